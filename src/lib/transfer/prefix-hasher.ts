import {Worker} from 'node:worker_threads'

/**
 * sha256 of the part file, computed while downloading over the contiguous prefix already on
 * disk (re-read from the page cache by a worker thread). On resume the prefix from the earlier
 * run is hashed first, since a hash state cannot be saved.
 *
 * A worker that fails (an error it reports, an exception, or an exit) fails the hash at once:
 * `onFailure` is told (the pull stops with the reason) and `finish` rejects with it, whenever
 * it is called; nothing waits forever for a digest that will not come.
 */
export class PrefixHasher {
  private readonly worker: Worker
  private sent = 0
  private result?: Promise<string>
  private failure?: Error
  private digest?: {resolve(d: string): void; reject(e: Error): void}
  private closed = false

  constructor(path: string, private readonly onFailure?: (error: Error) => void) {
    this.worker = new Worker(new URL('./hash-worker.js', import.meta.url), {
      workerData: {path},
      // It only reads and hashes: a small heap keeps the pull's memory low.
      resourceLimits: {maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16},
    })
    this.worker.unref()
    this.worker.on('message', (m: {digest?: string; error?: string}) => {
      if (m.error) this.failed(new Error(`hashing failed: ${m.error}`))
      else if (m.digest) this.digest?.resolve(m.digest)
    })
    this.worker.on('error', (error) => this.failed(new Error(`hashing failed: ${error.message}`)))
    this.worker.on('exit', (code) => {
      if (!this.closed) this.failed(new Error(`hashing failed: the hash worker exited (code ${code}) before the digest was ready`))
    })
  }

  private failed(error: Error): void {
    if (this.failure || this.closed) return
    this.failure = error
    this.digest?.reject(error)
    this.onFailure?.(error)
  }

  /**
   * The bytes [0, upTo) are on disk. `step`: tell the worker only once this much more is,
   * so that calling after every write costs little.
   */
  extend(upTo: number, step = 0): void {
    if (upTo <= this.sent + step || this.result || this.failure) return
    this.sent = upTo
    this.worker.postMessage({upTo})
  }

  finish(size: number): Promise<string> {
    this.result ??= new Promise<string>((resolve, reject) => {
      if (this.failure) return reject(this.failure)
      this.digest = {resolve, reject}
      this.worker.postMessage({upTo: size, finish: true})
    }).finally(() => this.close())
    return this.result
  }

  close(): void {
    this.closed = true
    void this.worker.terminate()
  }
}
