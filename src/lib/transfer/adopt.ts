import {existsSync, lstatSync} from 'node:fs'
import {lstat, open, readdir, readlink, realpath, rename} from 'node:fs/promises'
import {join, resolve} from 'node:path'

/**
 * Another client's partial download of the same file, taken over as the start of a pull:
 * huggingface_hub appends to `blobs/ETAG.incomplete` (`.cache/huggingface/download/PATH.ETAG.incomplete`
 * in a local dir) in order, so its bytes are the file's first ones. A user whose `hf download`
 * died at 180 GB of 200 and who runs mtune instead keeps the 180 GB. The bytes are checked as
 * any resumed ones are: a sample at their end against the server (resume-check.ts), and the
 * whole file against its digest before it is put in place.
 */

export interface Adoption {
  bytes: number
  /** Why a file that was there is not taken over. */
  why?: string
}

/**
 * Moves `from` to `partPath` when it is a plausible start of a file of `size` bytes, and says
 * how many bytes it holds. Left alone: a file another process still has open (that client is
 * still downloading it), one as large as the file or larger (not a prefix: preallocated, or
 * another file), and a sparse one (written out of order, by a parallel downloader: it has holes).
 */
export async function adoptPrefix(from: string, partPath: string, size: number): Promise<Adoption> {
  const info = await lstat(from).catch(() => undefined)
  if (!info?.isFile() || info.size === 0) return {bytes: 0}
  if (info.size >= size) return {bytes: 0, why: `${from} is not shorter than the file (${info.size} of ${size} bytes): not a partial download`}
  if (info.blocks * 512 < info.size - 4096 * 2) return {bytes: 0, why: `${from} has holes (written out of order): not a start to build on`}
  const holder = await openedElsewhere(from)
  if (holder) return {bytes: 0, why: `${from} is open in process ${holder}: that download is still running`}
  const moved = await rename(from, partPath).then(
    () => undefined,
    (error: NodeJS.ErrnoException) => error.code ?? 'error',
  )
  if (moved) return {bytes: 0, why: `${from} cannot be moved beside the file (${moved})`}
  // From here on the journal calls these bytes durable.
  const handle = await open(partPath, 'r+')
  try {
    await handle.datasync()
  } finally {
    await handle.close()
  }
  return {bytes: info.size}
}

/**
 * Where the first request should start when `adopt` will be taken over (no partial download of
 * mtune's own is there): after its bytes, as a resumed pull's first request asks for its first hole.
 */
export function adoptedHole(dest: {partPath: string; journalPath: string}, adopt: {path: string; size: number} | undefined): {start: number; end: number} | undefined {
  if (!adopt || existsSync(dest.journalPath) || existsSync(dest.partPath)) return undefined
  // As adoptPrefix will judge it: a plain file, shorter than the file.
  const info = lstatSync(adopt.path, {throwIfNoEntry: false})
  return info?.isFile() && info.size > 0 && info.size < adopt.size ? {start: info.size, end: adopt.size} : undefined
}

/** A process other than this one with `path` open (Linux's /proc/PID/fd links), or undefined; processes this user cannot see are skipped. */
export async function openedElsewhere(path: string, proc = '/proc'): Promise<number | undefined> {
  // The links name the file's real, absolute path; HF_HOME may be relative or go through a link.
  const target = await realpath(path).catch(() => resolve(path))
  const pids = (await readdir(proc).catch(() => [] as string[])).filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
  for (const pid of pids) {
    const fds = await readdir(join(proc, pid, 'fd')).catch(() => [] as string[])
    for (const fd of fds) if ((await readlink(join(proc, pid, 'fd', fd)).catch(() => undefined)) === target) return Number(pid)
  }
  return undefined
}
