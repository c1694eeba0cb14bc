import {writevSync} from 'node:fs'
import {open, rm, type FileHandle} from 'node:fs/promises'
import {formatBytes} from '../units.js'
import {reserveSpace, type Reserved} from './reserve-space.js'
import {writeGate, type WriteGate} from './write-gate.js'

/** Where downloaded bytes go; an interface so tests can make the disk fail (ENOSPC). */
export interface PartFile {
  /** Write `length` bytes from the start of `buffers` at `position`. */
  write(buffers: Buffer[], length: number, position: number): Promise<void>
  datasync(): Promise<void>
  close(): Promise<void>
}

/**
 * `reserve`: reserve a fresh file's blocks (reserve-space.ts; the caller decides, beside its
 * free-space check). `debug`: a line for --debug (whether they were, and when writes go to the
 * pool). `slow`: told each time the writes wait on the disk so long that they go to the pool.
 */
export type OpenPartFile = (path: string, size: number | undefined, fresh: boolean, o?: {reserve?: boolean; debug?: (line: string) => void; slow?: () => void}) => Promise<PartFile>

/**
 * The temporary file beside the destination, written with positional writes. A fresh one has
 * the file's length from the start and, when asked, its blocks reserved; a resumed one keeps
 * what its first run reserved. `reserve`: tests make the disk full; `writeDirect`: tests make
 * the disk slow.
 */
export const partFileOpener =
  (reserve = reserveSpace, writeDirect: typeof writevSync = writevSync): OpenPartFile =>
  async (path, size, fresh, o = {}) => {
    const handle: FileHandle = await open(path, fresh ? 'w+' : 'r+')
    if (fresh && size !== undefined) {
      await handle.truncate(size)
      if (o.reserve) {
        const reserved = await reserveOrGiveBack(handle, path, size, reserve)
        o.debug?.(reserved.reserved ? `reserved ${formatBytes(size)} on disk for ${path}` : `not reserving space for ${path} (${reserved.why}): the file fills in as it arrives`)
      }
    }
    const pooled = (forMs: number, sleptMs: number) => {
      o.debug?.(`writes to ${path} slept ${Math.round(sleptMs)} ms in the kernel within a second (a disk or filesystem slower than the network): through the thread pool for ${forMs / 1000} s`)
      o.slow?.()
    }
    return writerOn(handle, writeGate(pooled), writeDirect)
  }

/**
 * Reserve the file's blocks. Two pulls reserving at once on a disk that holds one can both run
 * out halfway: each gives its blocks back and tries once more after its own short wait, so that
 * one of them gets the room. Where the disk still has none, the blocks allocated before it ran
 * out go back at once, with the file.
 */
async function reserveOrGiveBack(handle: FileHandle, path: string, size: number, reserve: typeof reserveSpace): Promise<Reserved> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await reserve(path, size)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOSPC' && attempt === 1) {
        await handle.truncate(0)
        await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 450))
        await handle.truncate(size)
        continue
      }
      await handle.close().catch(() => {})
      await rm(path, {force: true})
      throw error
    }
  }
}

export const openPartFile: OpenPartFile = partFileOpener()

/**
 * `gate`: whether each write is made directly or through the pool (write-gate.ts); one per
 * handle, so per file and per thread, as each thread writes its own requests' bytes.
 */
export function writerOn(handle: FileHandle, gate: WriteGate = writeGate(), writeDirect: typeof writevSync = writevSync): PartFile {
  const writeOnce = async (buffers: Buffer[], position: number): Promise<number> => {
    if (!gate.direct()) return (await handle.writev(buffers, position)).bytesWritten
    const started = performance.now()
    try {
      return writeDirect(handle.fd, buffers, position)
    } finally {
      gate.took(performance.now() - started)
    }
  }
  return {
    async write(buffers, length, position) {
      // writev: network chunks go to disk as they came, without being copied together first.
      let pending = slice(buffers, 0, length)
      let done = 0
      while (done < length) {
        done += await writeOnce(pending, position + done)
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
