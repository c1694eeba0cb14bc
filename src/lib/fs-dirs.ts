import {mkdirSync, readdirSync, statSync, statfsSync, type Stats} from 'node:fs'
import {mkdir} from 'node:fs/promises'
import {dirname, join, resolve} from 'node:path'
import {ExitCode, MtuneError} from './errors.js'

/**
 * `mkdir -p` that always ends. Node's own recursive mkdir (20.x, sync and async) loops for ever
 * when a missing directory cannot be made and the kernel answers ENOENT rather than EACCES, as
 * under /proc and /sys (HOME=/proc/...: a pull spun at full CPU, with no message). This climbs
 * to the nearest directory that exists and makes each level below it once, so the first
 * failure is the error, naming the directory that could not be made.
 */
export async function makeDirs(path: string): Promise<void> {
  for (const dir of missingLevels(path)) await mkdir(dir).catch(existsAlready)
}

/** makeDirs, synchronously (state files, the cache's folders). */
export function makeDirsSync(path: string): void {
  for (const dir of missingLevels(path)) {
    try {
      mkdirSync(dir)
    } catch (error) {
      existsAlready(error)
    }
  }
}

/** The directories to make, top first; a file where one should be is the error mkdir would give. */
function missingLevels(path: string): string[] {
  const {found, missing} = nearestExisting(path)
  if (found && !found.directory) throw notDirectory(found.path)
  return missing
}

/** The nearest path at or above `path` that exists (a few stat calls), and the levels below it. */
export function nearestExisting(path: string): {found?: {path: string; directory: boolean}; missing: string[]} {
  const missing: string[] = []
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    const info = statOrNone(dir)
    if (info) return {found: {path: dir, directory: info.isDirectory()}, missing}
    missing.unshift(dir)
    if (dirname(dir) === dir) return {missing}
  }
}

/**
 * /proc, /sys and the kernel's other filesystems, which statfs gives no blocks: root may open
 * their files, but no file of ours can be made there (and "0 free" is no full disk).
 */
export function onKernelFilesystem(path: string): boolean {
  try {
    return statfsSync(path).blocks === 0
  } catch {
    return false
  }
}

/** stat, or nothing where there is nothing to stat (ENOENT, and ENOTDIR below a file). */
export function statOrNone(path: string): Stats | undefined {
  try {
    return statSync(path)
  } catch {
    return undefined
  }
}

/** A file where a directory should be: the error mkdir would give, with the path. */
const notDirectory = (path: string) => Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${path}'`), {code: 'ENOTDIR', path})

/** Another process made it in between (two pulls into one cache): that is as good. */
function existsAlready(error: unknown): void {
  if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
}

const WHY: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'a read-only filesystem',
  ENOSPC: 'the disk is full',
  ENOTDIR: 'a file is in the way',
  ENOENT: 'directories cannot be made there',
}

/**
 * A directory that could not be made (or a file, a link that could not be written), as one line
 * with the way out (exit 5): `where` says what it is for and which setting moves it.
 */
export function dirError(error: unknown, where: string, doing: 'create' | 'write' = 'create'): MtuneError {
  const e = error as NodeJS.ErrnoException
  const why = (e.code && WHY[e.code]) ?? e.message
  return new MtuneError('not-writable', `cannot ${doing} ${e.path ?? 'the directory'} (${why}): ${where}`, ExitCode.localDisk, {cause: error})
}

/**
 * A filesystem failure that reached a command unhandled (a disk filled by someone else while
 * mtune wrote a configuration, a state file, a journal), as one line and exit 5 rather than
 * "unexpected error": the path when there is one, why in words, and the way out.
 */
export function fsFailure(error: unknown): MtuneError | undefined {
  const e = error as NodeJS.ErrnoException
  const code = e?.code === 'EDQUOT' ? 'ENOSPC' : e?.code
  if (!code || !['ENOSPC', 'EROFS', 'EACCES', 'EPERM'].includes(code) || !e.syscall || ['kill', 'connect', 'listen', 'bind', 'spawn'].some((s) => e.syscall!.startsWith(s))) return undefined
  const fix = code === 'ENOSPC' ? 'free some space on that disk, or choose another place' : code === 'EROFS' ? 'choose a place on a writable filesystem' : "choose a place you can write, or fix the directory's permissions"
  return new MtuneError(code === 'ENOSPC' ? 'no-space' : 'not-writable', `cannot write ${e.path ?? 'to the disk'} (${WHY[code]}): ${fix}`, ExitCode.localDisk, {cause: error})
}

/** A failure of the filesystem that dirError can say in words (permissions, read-only, full). */
export const isFsRefusal = (error: unknown): boolean => Boolean(WHY[(error as NodeJS.ErrnoException)?.code ?? ''])

/** Files under `dir` (links to files too), sorted; hidden entries (.cache, .git: bookkeeping) left out. */
export function filesUnder(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, {withFileTypes: true}).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.')) continue
    const path = join(dir, entry.name)
    if (entry.isDirectory()) filesUnder(path, out)
    else if (entry.isFile() || entry.isSymbolicLink()) out.push(path)
  }
  return out
}
