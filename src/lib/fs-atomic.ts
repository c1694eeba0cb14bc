import {closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync} from 'node:fs'
import {open, rename, rm} from 'node:fs/promises'
import {dirname} from 'node:path'
import {makeDirsSync} from './fs-dirs.js'

/**
 * Replace a file so that a crash or power loss leaves the old content or the new, never a torn
 * or empty file: write a temporary file beside it, fsync it, rename it over the target, then
 * fsync the directory so that the rename itself is on disk.
 */
export function writeFileAtomic(path: string, content: string, mode = 0o644): void {
  makeDirsSync(dirname(path))
  const tmp = `${path}.${process.pid}.tmp`
  const fd = openSync(tmp, 'w', mode)
  try {
    writeSync(fd, content)
    fsyncSync(fd)
  } catch (error) {
    closeSync(fd)
    rmSync(tmp, {force: true})
    // A write on a descriptor names no file: the one it was for is what the user needs to hear.
    ;(error as NodeJS.ErrnoException).path ??= path
    throw error
  }
  closeSync(fd)
  renameSync(tmp, path)
  syncDirectory(dirname(path))
}

/** Remove a file and make the removal durable. */
export function removeFileDurably(path: string): void {
  rmSync(path, {force: true})
  syncDirectory(dirname(path))
}

/** fsync a directory, so that a rename or an unlink in it survives a power loss. */
export function syncDirectory(dir: string): void {
  let fd: number | undefined
  try {
    fd = openSync(dir, 'r')
    fsyncSync(fd)
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic there.
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/** fsync a directory without blocking the event loop (the thread pool does it). */
export async function fsyncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  } catch {
    // As above: not every filesystem allows it.
  }
}

/**
 * writeFileAtomic without blocking the event loop, for what a pull puts in place last (a
 * manifest, a ref): the temporary file (beside the target unless `tmp` names one on the same
 * filesystem, where the target's directory is scanned by another tool) is written and fsynced,
 * renamed over the target, and the directory fsynced.
 */
export async function writeFileDurably(path: string, content: string | Buffer, options: {mode?: number; tmp?: string} = {}): Promise<void> {
  const tmp = options.tmp ?? `${path}.${process.pid}.tmp`
  const handle = await open(tmp, 'w', options.mode ?? 0o644)
  try {
    await handle.writeFile(content)
    await handle.sync()
  } catch (error) {
    await handle.close()
    await rm(tmp, {force: true})
    throw error
  }
  await handle.close()
  await rename(tmp, path)
  await fsyncDirectory(dirname(path))
}
