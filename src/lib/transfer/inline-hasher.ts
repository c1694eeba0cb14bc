import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'

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
    const bytes = await readFile(this.path)
    if (bytes.length < size) throw new Error(`hashing failed: part file ended at ${bytes.length} bytes, expected ${size}`)
    return createHash('sha256').update(bytes.subarray(0, size)).digest('hex')
  }

  close(): void {}
}
