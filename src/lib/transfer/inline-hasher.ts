import {createHash} from 'node:crypto'
import {open} from 'node:fs/promises'
import {readAhead} from '../read-ahead.js'

/** Files up to this size are hashed on the main thread once complete (about 3 ms of sha256). */
export const INLINE_HASH_MAX = 4 * 1024 * 1024

/**
 * sha256 of a small part file, read once it is complete. A hash worker costs a thread with its
 * own V8 and Node start (about 75 ms of CPU and up to 100 ms before its first digest), which a
 * model's config, tokenizer and README files paid each: 40 files of a few KB took 1.5 s and
 * 3 CPU s to pull. Their hashing in place takes a few ms, and they have no tail to overlap.
 */
export class InlineHasher {
  constructor(private readonly path: string) {}

  extend(): void {}

  async finish(size: number): Promise<string> {
    const handle = await open(this.path, 'r')
    try {
      const hash = createHash('sha256')
      const block = Math.max(1, Math.min(size, 1024 * 1024))
      let hashed = 0
      for await (const bytes of readAhead(handle.fd, 0, size, [Buffer.allocUnsafe(block), Buffer.allocUnsafe(block)])) {
        hash.update(bytes)
        hashed += bytes.length
      }
      if (hashed < size) throw new Error(`hashing failed: part file ended at ${hashed} bytes, expected ${size}`)
      return hash.digest('hex')
    } finally {
      await handle.close()
    }
  }

  close(): void {}
}
