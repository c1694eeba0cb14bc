import {open, rm, statfs, type FileHandle} from 'node:fs/promises'
import {dirname} from 'node:path'
import {formatBytes} from '../units.js'
import {RESERVE_FROM, reserveSpace} from './reserve-space.js'

/** Where downloaded bytes go; an interface so tests can make the disk fail (ENOSPC). */
export interface PartFile {
  /** Write `length` bytes from the start of `buffers` at `position`. */
  write(buffers: Buffer[], length: number, position: number): Promise<void>
  datasync(): Promise<void>
  close(): Promise<void>
}

/** `debug`: a line for --debug (whether the file's space was reserved). */
export type OpenPartFile = (path: string, size: number | undefined, fresh: boolean, debug?: (line: string) => void) => Promise<PartFile>

/**
 * Whether a file of `size` would take a good part of the free space where it goes: a quarter or
 * more. There, another writer could fill the disk under the pull, and its blocks are reserved.
 * Not below: reserving costs (the capped scenario of npm run bench, 512 MiB on a disk with 80 GB
 * free, went from 150.5-150.8 MiB/s to 133.8-151.1 with it, in 6 and 9 runs: whether the process
 * forked as the pull starts or ext4's converting its unwritten extents, not told apart), and
 * buys nothing on a disk with room to spare.
 */
export async function takesMuchOfTheDisk(path: string, size: number): Promise<{much: boolean; free?: number}> {
  const fs = await statfs(dirname(path)).catch(() => undefined)
  if (!fs) return {much: true}
  const free = fs.bavail * fs.bsize
  return {much: size * 4 >= free, free}
}

/**
 * The temporary file beside the destination, written with positional writes. A fresh one has
 * the file's length from the start and, when big and a good part of the free space, its blocks
 * reserved (reserve-space.ts); a resumed one keeps what its first run reserved. `reserve` and
 * `much`: tests make the disk full, or tight.
 */
export const partFileOpener =
  (reserve = reserveSpace, much = takesMuchOfTheDisk): OpenPartFile =>
  async (path, size, fresh, debug) => {
    const handle: FileHandle = await open(path, fresh ? 'w+' : 'r+')
    if (fresh && size !== undefined) {
      await handle.truncate(size)
      const tight = size >= RESERVE_FROM ? await much(path, size) : {much: false}
      if (size >= RESERVE_FROM && !tight.much) debug?.(`not reserving space for ${path}: ${formatBytes(size)} is under a quarter of the ${formatBytes(tight.free ?? 0)} free`)
      if (tight.much) {
        const reserved = await reserve(path, size)
          .catch(async (error: unknown) => {
            // Two pulls reserving at once on a disk that holds one can both run out halfway:
            // each gives its blocks back and tries once more after its own short wait, so that
            // one of them gets the room.
            if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error
            await handle.truncate(0)
            await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 450))
            await handle.truncate(size)
            return reserve(path, size)
          })
          .catch(async (error: unknown) => {
            // The blocks allocated before the disk ran out go back at once, with the file.
            await handle.close().catch(() => {})
            await rm(path, {force: true})
            throw error
          })
        debug?.(reserved.reserved ? `reserved ${formatBytes(size)} on disk for ${path}` : `not reserving space for ${path} (${reserved.why}): the file fills in as it arrives`)
      }
    }
    return writerOn(handle)
  }

export const openPartFile: OpenPartFile = partFileOpener()

function writerOn(handle: FileHandle): PartFile {
  return {
    async write(buffers, length, position) {
      // writev: network chunks go to disk as they came, without being copied together first.
      let pending = slice(buffers, 0, length)
      let done = 0
      while (done < length) {
        const {bytesWritten} = await handle.writev(pending, position + done)
        done += bytesWritten
        if (done < length) pending = slice(buffers, done, length)
      }
    },
    datasync: () => handle.datasync(),
    close: () => handle.close(),
  }
}

/** A part file still being opened: writes wait for it, so that requests need not. */
export function whenOpen(opening: Promise<PartFile>): PartFile {
  return {
    write: async (buffers, length, position) => (await opening).write(buffers, length, position),
    datasync: async () => (await opening).datasync(),
    close: async () => (await opening).close(),
  }
}

/** The bytes [from, to) of a list of buffers, as views. */
function slice(buffers: Buffer[], from: number, to: number): Buffer[] {
  const out: Buffer[] = []
  let offset = 0
  for (const b of buffers) {
    const start = Math.max(from, offset)
    const end = Math.min(to, offset + b.length)
    if (end > start) out.push(b.subarray(start - offset, end - offset))
    offset += b.length
  }
  return out
}
