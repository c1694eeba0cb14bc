import {accessSync, constants} from 'node:fs'
import {open, rm} from 'node:fs/promises'
import {join} from 'node:path'
import {ExitCode, MtuneError, usageError} from '../errors.js'
import {onKernelFilesystem, statOrNone} from '../fs-dirs.js'

/** --disk checked before the bench spends its budget: a directory this user can write. */
export function checkDiskDir(dir: string): void {
  const info = statOrNone(dir)
  if (!info) throw usageError('bad-disk', `invalid --disk "${dir}": no such directory; give the directory models will be written to`)
  if (!info.isDirectory()) throw usageError('bad-disk', `invalid --disk "${dir}": not a directory; give the directory models will be written to`)
  if (onKernelFilesystem(dir)) throw usageError('bad-disk', `invalid --disk "${dir}": a kernel filesystem, not a disk; give the directory models will be written to`)
  try {
    accessSync(dir, constants.W_OK)
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === 'EROFS' ? 'it is on a read-only filesystem' : 'it is not writable by this user'
    throw new MtuneError('not-writable', `cannot measure --disk ${dir}: ${why}; give a directory you can write`, ExitCode.localDisk)
  }
}

/** Flushed every this many bytes: the time limit then holds within one flush. */
const FLUSH_EVERY = 32 * 1024 * 1024

/**
 * Sequential write throughput of the disk under `dir`, flushed to the device, then cleaned up.
 * Flushed as it goes: writes land in the page cache faster than any disk takes them, and one
 * flush at the end of `timeMs` of them overran bench's --duration by the disk's backlog.
 */
export async function measureDiskWrite(dir: string, options: {bytes: number; timeMs: number; signal?: AbortSignal}): Promise<{bytes: number; seconds: number; throughputBps: number}> {
  const path = join(dir, `.mtune-bench-${process.pid}.tmp`)
  const block = Buffer.alloc(4 * 1024 * 1024, 0x5a)
  const handle = await open(path, 'w')
  const started = performance.now()
  let written = 0
  // The last flush's time, kept in hand for the final one.
  let flushMs = 0
  const flush = async () => {
    const at = performance.now()
    await handle.datasync()
    flushMs = performance.now() - at
  }
  try {
    while (written < options.bytes && performance.now() - started + flushMs < options.timeMs && !options.signal?.aborted) {
      const n = Math.min(block.length, options.bytes - written)
      await handle.write(block, 0, n, written)
      written += n
      if (written % FLUSH_EVERY === 0) await flush()
    }
    await flush()
  } finally {
    await handle.close()
    await rm(path, {force: true})
  }
  const seconds = (performance.now() - started) / 1000
  return {bytes: written, seconds, throughputBps: seconds > 0 ? written / seconds : 0}
}
