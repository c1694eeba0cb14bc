import {createHash, type Hash} from 'node:crypto'
import type {Stats} from 'node:fs'
import {access, constants, lstat, open, readlink, realpath, stat, statfs} from 'node:fs/promises'
import {basename, dirname, join, resolve} from 'node:path'
import {ExitCode, MtuneError} from '../errors.js'
import {dirError, isFsRefusal, makeDirs, nearestExisting, onKernelFilesystem} from '../fs-dirs.js'
import {downloadName, safeFilename, serverFilename} from '../net/http-range.js'
import {redact} from '../net/request.js'
import {formatBytes} from '../units.js'
import {ANOTHER_OUTPUT, type Elsewhere} from './pull-types.js'

export interface Destination {
  path: string
  /** The temporary file, renamed to `path` only when complete and verified. */
  partPath: string
  journalPath: string
}

export const destinationFor = (path: string): Destination => ({path, partPath: `${path}.part`, journalPath: `${path}.part.journal`})

/**
 * -o may name a file or an existing directory; in a directory (or with no -o) the name comes
 * from Content-Disposition, else from the URL (downloadName: the one given, or where it led).
 */
export async function resolveDestination(output: string | undefined, suggested: string | undefined, url: string, finalUrl = url): Promise<Destination> {
  const target = resolve(output ?? '.')
  const info = await stat(target).catch(() => undefined)
  if (info?.isDirectory() || (output ?? '').endsWith('/')) {
    const name = serverFilename(suggested) ?? safeFilename(downloadName(new URL(url), new URL(finalUrl)))
    if (!name) throw new MtuneError('no-filename', `cannot tell a file name from ${redact(url)}: give one with -o PATH`, ExitCode.usage)
    const path = join(target, name)
    return checkedDestination(path, await stat(path).catch(() => undefined))
  }
  return checkedDestination(target, info)
}

/** The destination when -o names a file (not a directory): known before asking the server. */
export async function fileDestination(output: string | undefined): Promise<Destination | undefined> {
  if (!output || output.endsWith('/')) return undefined
  const target = resolve(output)
  const info = await stat(target).catch(() => undefined)
  if (info?.isDirectory()) return undefined
  return checkedDestination(target, info)
}

/** Linux filesystems allow names of at most 255 bytes (NAME_MAX), the partial files' too. */
const NAME_MAX = 255
const LONGEST_SUFFIX = '.part.journal.tmp'

/**
 * The destination, if it can be written as mtune writes: no device or descriptor to be replaced
 * (refuseSpecial), and partial files that can be named: `NAME.part.journal.tmp` must fit in
 * NAME_MAX, else the pull would fail with ENAMETOOLONG on a name the user never typed.
 */
async function checkedDestination(path: string, info: Stats | undefined): Promise<Destination> {
  await refuseSpecial(path, info)
  const name = basename(path)
  const room = NAME_MAX - LONGEST_SUFFIX.length
  if (Buffer.byteLength(name) > room) {
    throw new MtuneError(
      'name-too-long',
      `the file name ${JSON.stringify(name.length > 40 ? `${name.slice(0, 20)}...${name.slice(-12)}` : name)} is ${Buffer.byteLength(name)} bytes; with the partial files beside it, names of at most ${room} bytes fit: give a shorter one with -o PATH`,
      ExitCode.usage,
    )
  }
  return destinationFor(path)
}

/**
 * A destination that exists and is no regular file or directory: a device (`-o /dev/null`, as
 * with curl), a pipe, a socket; or a link to one of the process's descriptors (`/dev/stdout`,
 * `/dev/fd/N`: /proc/self/fd). The part file is renamed onto the destination when complete, which
 * replaced the device node or the link itself (as root, /dev/null became a plain file).
 */
async function refuseSpecial(path: string, info: Stats | undefined): Promise<void> {
  const kind = (await throughProc(path))
    ? "one of this process's file descriptors"
    : info && !info.isFile() && !info.isDirectory()
      ? info.isCharacterDevice() ? 'a character device' : info.isBlockDevice() ? 'a block device' : info.isFIFO() ? 'a pipe' : info.isSocket() ? 'a socket' : 'not a regular file'
      : undefined
  if (!kind) return
  throw new MtuneError(
    'special-file',
    `${path} is ${kind}, not a file: mtune writes the download beside it and renames it into place, which would replace it; give a file or directory with -o (to measure a download without keeping it: mtune bench --mirror URL)`,
    ExitCode.usage,
  )
}

/** A process's descriptors in /proc, as /dev/fd and /dev/stdout lead to them. */
const PROC_FD = /^\/proc\/(?:self|thread-self|\d+)(?:\/task\/\d+)?\/fd$/

/** Whether `path`, or a link it leads through, is a file descriptor in /proc (not a file). Elsewhere in /proc is ensureWritableDirectory's. */
async function throughProc(path: string): Promise<boolean> {
  let at = path
  for (let hop = 0; hop < 8; hop++) {
    if (PROC_FD.test(await realpath(dirname(at)).catch(() => dirname(at)))) return true
    if (!(await lstat(at).catch(() => undefined))?.isSymbolicLink()) return false
    at = resolve(dirname(at), await readlink(at))
  }
  return false
}

/**
 * The destination's directory can take the file. One that is missing is made, levels and all, as
 * aria2c -d, wget -P and pull --local-dir do: with `create`, once the server has answered (a
 * failed pull leaves no empty directory); before that, only whether it could be.
 */
export async function ensureWritableDirectory(dest: Destination, options: {create: boolean; elsewhere?: Elsewhere}): Promise<void> {
  const elsewhere = options.elsewhere ?? ANOTHER_OUTPUT
  const dir = dirname(dest.path)
  const {found} = nearestExisting(dir)
  if (found && !found.directory) throw new MtuneError('no-directory', `cannot write ${dest.path}: ${found.path} is a file, not a directory; ${elsewhere.unwritable}`, ExitCode.localDisk)
  const writable = found?.path ?? '/'
  try {
    await access(writable, constants.W_OK)
  } catch (error) {
    const what = writable === dir ? dir : `${writable} (to make ${dir} in it)`
    // Permissions can be fixed; a read-only mount (an image, a snapshot, a ro bind mount) cannot from here.
    if ((error as NodeJS.ErrnoException).code === 'EROFS') throw new MtuneError('not-writable', `cannot write to ${what}: it is on a read-only filesystem; ${elsewhere.unwritable}`, ExitCode.localDisk)
    throw new MtuneError('not-writable', `cannot write to ${what}: permission denied; ${elsewhere.unwritable}, or fix the directory's permissions`, ExitCode.localDisk)
  }
  if (onKernelFilesystem(writable)) {
    throw new MtuneError('not-writable', `cannot write to ${writable}: it is a kernel filesystem, not a disk; ${elsewhere.unwritable}`, ExitCode.localDisk)
  }
  if (options.create && writable !== dir) {
    await makeDirs(dir).catch((error: unknown) => Promise.reject(isFsRefusal(error) ? dirError(error, elsewhere.unwritable) : error))
  }
}

export async function fileExists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false
}

/** The file's sha256, as hex. */
export const sha256File = (path: string): Promise<string> => digestFile(path, createHash('sha256'))

/**
 * `hash` (already fed any prefix) over the file's content, as hex. One buffer, no larger than
 * the file, read into again and again: a read stream allocates its whole high-water mark for
 * every read (4 MiB for a 20 KB file, then a copy), which made a re-run over a list of
 * thousands of small files mostly allocation and GC.
 */
export async function digestFile(path: string, hash: Hash): Promise<string> {
  const file = await open(path, 'r')
  try {
    const buffer = Buffer.allocUnsafe(Math.max(1, Math.min((await file.stat()).size, 4 * 1024 * 1024)))
    for (;;) {
      const {bytesRead} = await file.read(buffer, 0, buffer.length, null)
      if (bytesRead === 0) break
      hash.update(buffer.subarray(0, bytesRead))
    }
  } finally {
    await file.close()
  }
  return hash.digest('hex')
}

/** Room kept free beside a pull: the journal, and a filesystem that is 100% full helps nobody. */
export const SPACE_HEADROOM = 16 * 1024 * 1024

/**
 * Refuse to start a pull that cannot fit: the bytes still to be written against what statfs says
 * is free. What the part file holds on disk counts as written: the blocks a first run reserved
 * (reserve-space.ts) are neither free nor needed again. Says what was free (nothing where statfs
 * could not tell), for whether to reserve the file's blocks.
 */
export async function checkFreeSpace(dest: Destination, size: number, kept: number, elsewhere: Elsewhere = ANOTHER_OUTPUT): Promise<{free?: number}> {
  const fs = await statfs(dirname(dest.path)).catch(() => undefined)
  // No blocks at all (/proc, /sys): not a disk that is full; opening the file there says what it is.
  if (!fs || fs.blocks === 0) return {}
  const allocated = await stat(dest.partPath).then((s) => s.blocks * 512, () => 0)
  const needed = bytesToWrite(size, kept, allocated)
  const free = fs.bavail * fs.bsize
  if (needed + SPACE_HEADROOM > free) {
    throw new MtuneError(
      'no-space',
      `not enough space in ${dirname(dest.path)}: ${formatBytes(needed)} still needed, ${formatBytes(free)} free; free some space, or ${elsewhere.full}`,
      ExitCode.localDisk,
    )
  }
  return {free}
}

/** Pure: what a file of `size` still needs on disk, with `kept` bytes written and `allocated` held by its part file. */
export const bytesToWrite = (size: number, kept: number, allocated: number): number => Math.max(0, size - Math.max(kept, Math.min(size, allocated)))

/** The disk refused to reserve a fresh file's blocks (reserve-space.ts): it filled since the check. */
export async function noRoomToReserve(dest: Destination, size: number, elsewhere: Elsewhere = ANOTHER_OUTPUT): Promise<MtuneError> {
  const fs = await statfs(dirname(dest.path)).catch(() => undefined)
  const free = fs ? `, ${formatBytes(fs.bavail * fs.bsize)} free now` : ''
  return new MtuneError(
    'no-space',
    `not enough space in ${dirname(dest.path)}: the disk would not reserve the file's ${formatBytes(size)} (something else filled it since the check${free}); free some space, or ${elsewhere.full}`,
    ExitCode.localDisk,
  )
}
