import {lchownSync, lstatSync, readFileSync, readdirSync} from 'node:fs'
import {dirname, join, sep} from 'node:path'
import {nearestExisting, statOrNone} from '../fs-dirs.js'

export interface StoreOwner {
  uid: number
  gid: number
  /** The directory whose owner this is: the nearest that existed before the pull. */
  top: string
}

/**
 * Who owns the place a plan writes, judged before anything is made there; undefined unless this
 * is root writing where another user owns it: `sudo -E mtune pull` into the user's own Hugging
 * Face cache, an Ansible task as root into the Ollama service's store (user ollama), a shared
 * cache that belongs to a service account.
 */
export function storeOwner(root: string, uid = process.getuid?.()): StoreOwner | undefined {
  if (uid !== 0) return undefined
  const found = nearestExisting(root).found
  const info = found?.directory ? statOrNone(found.path) : undefined
  if (!found || !info || info.uid === 0) return undefined
  return {uid: info.uid, gid: info.gid, top: found.path}
}

/**
 * What root made under `root` (and the directories it made above it, up to the owner's), given
 * to the owner, as if that user had pulled it. Left root's, a model's directories stop their
 * owner's own tools: the Ollama service cannot write a new tag beside a manifest mtune wrote,
 * huggingface_hub cannot add a revision or resume a file, and the next pull as that user cannot
 * take over the part files. Only entries root owns are changed; links are changed, not followed.
 * Returns how many were.
 */
export function giveToOwner(owner: StoreOwner, root: string): number {
  let changed = 0
  const take = (path: string): boolean => {
    const info = lstatSync(path, {throwIfNoEntry: false})
    if (!info) return false
    if (info.uid === 0) {
      try {
        lchownSync(path, owner.uid, owner.gid)
        changed++
      } catch {
        // Another process removed it meanwhile, or a filesystem that keeps no owners (vfat).
      }
    }
    return info.isDirectory()
  }
  const walk = (dir: string): void => {
    if (!take(dir)) return
    let names: string[] = []
    try {
      names = readdirSync(dir)
    } catch {
      return
    }
    for (const name of names) walk(join(dir, name))
  }
  for (let dir = dirname(root); dir.startsWith(owner.top + sep); dir = dirname(dir)) take(dir)
  walk(root)
  return changed
}

/** "alice (uid 1000)", from /etc/passwd where it names the uid; else "uid 1000". */
export function ownerWords(uid: number, passwd = '/etc/passwd'): string {
  try {
    const line = readFileSync(passwd, 'utf8')
      .split('\n')
      .find((l) => l.split(':')[2] === String(uid))
    if (line) return `${line.split(':')[0]} (uid ${uid})`
  } catch {
    // No passwd file (a minimal container): the number alone.
  }
  return `uid ${uid}`
}
