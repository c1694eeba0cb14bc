import {Worker} from 'node:worker_threads'

/**
 * sha256 of the part file, computed while downloading over the contiguous prefix already on
 * disk (re-read from the page cache by a worker thread). On resume the prefix from the earlier
 * run is hashed first, since a hash state cannot be saved.
 */
export class PrefixHasher {
  private readonly worker: Worker
  private sent = 0
  private result?: Promise<string>

  constructor(path: string) {
    this.worker = new Worker(new URL('./hash-worker.js', import.meta.url), {
      workerData: {path},
      // It only reads and hashes: a small heap keeps the pull's memory low.
      resourceLimits: {maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16},
    })
    this.worker.unref()
  }

  /**
   * The bytes [0, upTo) are on disk. `step`: tell the worker only once this much more is,
   * so that calling after every write costs little.
   */
  extend(upTo: number, step = 0): void {
    if (upTo <= this.sent + step || this.result) return
    this.sent = upTo
    this.worker.postMessage({upTo})
  }

  finish(size: number): Promise<string> {
    this.result ??= new Promise<string>((resolve, reject) => {
      this.worker.on('message', (m: {digest?: string; error?: string}) => {
        if (m.error) reject(new Error(`hashing failed: ${m.error}`))
        else if (m.digest) resolve(m.digest)
      })
      this.worker.on('error', reject)
      this.worker.postMessage({upTo: size, finish: true})
    }).finally(() => void this.worker.terminate())
    return this.result
  }

  close(): void {
    void this.worker.terminate()
  }
}
