import {open, type FileHandle} from 'node:fs/promises'

/** Where downloaded bytes go; an interface so tests can make the disk fail (ENOSPC). */
export interface PartFile {
  write(buffer: Buffer, length: number, position: number): Promise<void>
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
    async write(buffer, length, position) {
      let done = 0
      while (done < length) {
        const {bytesWritten} = await handle.write(buffer, done, length - done, position + done)
        done += bytesWritten
      }
    },
    datasync: () => handle.datasync(),
    close: () => handle.close(),
  }
}
