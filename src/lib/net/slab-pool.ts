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
 */
export const SLAB_BYTES = 64 * 1024

/** Enough for 64 connections' queued and unwritten bytes, so a steady pull allocates none. */
const KEEP = 512
const free: Buffer[] = []

export function takeSlab(): Buffer {
  return free.pop() ?? Buffer.allocUnsafeSlow(SLAB_BYTES)
}

/** Only slabs that nothing reads from any more (no pending write, no view still in use). */
export function giveSlabs(slabs: Buffer[]): void {
  for (const slab of slabs) if (free.length < KEEP) free.push(slab)
}
