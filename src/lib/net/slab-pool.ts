/**
 * Fixed-size buffers that response bodies are copied into as they arrive, and that are reused
 * for the whole process.
 *
 * Why copy: each socket read is a fresh ArrayBuffer. Kept while the disk catches up, it
 * survives young-generation collections, is promoted, and then waits for a full collection,
 * which V8 only forces at 64 MB of external memory: 20-50 MB of dead network buffers at the
 * peak of a 2 GiB pull. Copied at once, every socket buffer is garbage the moment it has been
 * parsed and goes with the next young collection; the bytes waiting for the disk sit in slabs
 * that are handed back and reused. The copy costs about 0.1 s of CPU per GiB.
 *
 * Why 256 KiB: mtune's own client (wire.ts) reads the socket straight into a slab's free end,
 * so a slab's size is the most one read can take, and each read is a turn of JavaScript (Node's
 * read callback, the body's queue, the consumer's wake-up). A 2 GiB pull from nginx over HTTP
 * took 38,000 reads with 64 KiB slabs and 12,400 with 256 KiB, and 2-15% less CPU in three
 * sets of interleaved runs, for 10-20 MB more peak RSS (docs/BENCHMARKS.md has every set).
 * 128 KiB saved about half of that, 512 KiB less than 256 (a socket seldom has that much
 * waiting). TLS hands over 16 KiB records whatever the size.
 */
export const SLAB_BYTES = 256 * 1024

/** 32 MiB: enough for 64 connections' queued and unwritten bytes, so a steady pull allocates none. */
const KEEP = 128
const free: Buffer[] = []

export function takeSlab(): Buffer {
  return free.pop() ?? Buffer.allocUnsafeSlow(SLAB_BYTES)
}

/** Only slabs that nothing reads from any more (no pending write, no view still in use). */
export function giveSlabs(slabs: Buffer[]): void {
  for (const slab of slabs) if (free.length < KEEP) free.push(slab)
}
