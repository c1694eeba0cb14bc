import {dirname} from 'node:path'
import {makeDirsSync} from './fs-dirs.js'
import {giveToOwner, storeOwner} from './sources/store-owner.js'

/**
 * Writes one of mtune's own files (bench.json, pulled.jsonl) under the user's cache directory,
 * making the directories it needs. Run as root in another user's home (`sudo -E mtune bench`,
 * `sudo mtune pull --auto --tune` where sudo keeps HOME, as Ubuntu's long did), what it made is
 * given to that user: left root's, a new ~/.cache/mtune, or worse a new ~/.cache, would stop the
 * user's own runs from saving their measurements and records, and other programs from writing
 * their caches (the "sudo pip" trap). Who owns the place is judged before anything is made.
 */
export function writeOwnFile(path: string, write: () => void): void {
  const owner = storeOwner(dirname(path))
  makeDirsSync(dirname(path))
  write()
  if (owner) giveToOwner(owner, path)
}
