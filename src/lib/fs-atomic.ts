import {closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync} from 'node:fs'
import {dirname} from 'node:path'

/**
 * Replace a file so that a crash or power loss leaves the old content or the new, never a torn
 * or empty file: write a temporary file beside it, fsync it, rename it over the target, then
 * fsync the directory so that the rename itself is on disk.
 */
export function writeFileAtomic(path: string, content: string, mode = 0o644): void {
  mkdirSync(dirname(path), {recursive: true})
  const tmp = `${path}.${process.pid}.tmp`
  const fd = openSync(tmp, 'w', mode)
  try {
    writeSync(fd, content)
    fsyncSync(fd)
  } catch (error) {
    closeSync(fd)
    rmSync(tmp, {force: true})
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
