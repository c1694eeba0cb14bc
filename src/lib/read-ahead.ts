import {read, readSync} from 'node:fs'

/**
 * A file's bytes from `from` to `to`, block by block, with the next block's read already running
 * in libuv's pool while the caller uses this one: a hash then costs its own thread only the hash,
 * and the page-cache copy (about a sixth of sha256's time with SHA extensions) runs on another
 * core. That pays only where a core is free for it: mtune verify of one 1 GiB file on 2 cores
 * took 1.35 s against 1.53 (medians of 8, interleaved), but 8 files on 2 workers 1.09 against
 * 1.04, and the pull's hash worker, beside the writes in the same pool, lost 15% of wall time.
 * The caller's two buffers (of one size, kept for the next file) alternate, so a yielded block
 * stays valid until the next one is asked for.
 */
export async function* readAhead(fd: number, from: number, to: number, buffers: [Buffer, Buffer]): AsyncGenerator<Buffer> {
  const blockSize = buffers[0].length
  const start = (i: number, at: number) =>
    new Promise<number>((resolve, reject) => read(fd, buffers[i], 0, Math.min(blockSize, to - at), at, (error, n) => (error ? reject(error) : resolve(n))))
  let at = from
  let turn = 0
  let pending = at < to ? start(turn, at) : undefined
  while (pending) {
    const n = await pending
    if (n === 0) return
    const block = buffers[turn].subarray(0, n)
    at += n
    turn ^= 1
    pending = at < to ? start(turn, at) : undefined
    yield block
  }
}

/** The same blocks read on the caller's thread, one at a time into one buffer. */
export function* readBlocks(fd: number, from: number, to: number, buffer: Buffer): Generator<Buffer> {
  for (let at = from; at < to; ) {
    const n = readSync(fd, buffer, 0, Math.min(buffer.length, to - at), at)
    if (n === 0) return
    at += n
    yield buffer.subarray(0, n)
  }
}
