import {open, type FileHandle} from 'node:fs/promises'

/** Where downloaded bytes go; an interface so tests can make the disk fail (ENOSPC). */
export interface PartFile {
  /** Write `length` bytes from the start of `buffers` at `position`. */
  write(buffers: Buffer[], length: number, position: number): Promise<void>
  datasync(): Promise<void>
  close(): Promise<void>
}

export type OpenPartFile = (path: string, size: number | undefined, fresh: boolean) => Promise<PartFile>

/** The temporary file beside the destination, written with positional writes. */
export const openPartFile: OpenPartFile = async (path, size, fresh) => {
  const handle: FileHandle = await open(path, fresh ? 'w+' : 'r+')
  // Sparse until written; the free-space check has been done before.
  if (fresh && size !== undefined) await handle.truncate(size)
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
