import type {Dispatcher} from 'undici'
import {flattenHeaders} from './request.js'
import {SLAB_BYTES, giveSlabs, takeSlab} from './slab-pool.js'

/**
 * A response body as batches of chunks: everything that arrived since the consumer last asked.
 * It skips a Readable stream between undici and the disk, whose reads concatenate what queued
 * up and whose buffers live as long as the disk makes them wait. Instead each chunk is copied
 * once, as it arrives, into pooled slabs (see slab-pool.ts).
 *
 * The chunks handed out are views of those slabs: they stay valid until the consumer says it
 * holds none of them (recycle) or is finished with the body (release).
 */
export interface ChunkStream extends AsyncIterable<Buffer[]> {
  /** Stop receiving; the connection is closed unless the body had ended. */
  destroy(): void
  /** Read the (small, error) body to its end so that the connection can be reused. */
  dump(): Promise<void>
  /** The consumer holds none of the chunks it was given (they are written): reuse their memory. */
  recycle(): void
  /** The consumer is done with this body and holds none of its chunks. */
  release(): void
}

export interface StreamedResponse {
  statusCode: number
  headers: Record<string, string | undefined>
  body: ChunkStream
}

/** Past this much unread, the socket is paused: the disk sets the pace, not memory. */
const HIGH_WATER = 128 * 1024
/** A waiting consumer is woken for this many bytes, or after WAKE_MS with fewer. */
const WAKE_BYTES = 64 * 1024
const WAKE_MS = 5
/** An error body longer than this is not worth reading to keep the connection. */
const DUMP_LIMIT = 256 * 1024

/** What a body needs of whatever feeds it: undici's DispatchController, or a wire connection. */
export interface BodySource {
  pause(): void
  resume(): void
  abort(reason: Error): void
  readonly paused: boolean
}

/**
 * The body's bytes in slabs, queued for the consumer. Fed either by copies of undici's chunks
 * (push) or, with no copy, by reads straight into its slabs (room, then fill).
 */
export class Batches implements ChunkStream {
  private queue: Buffer[] = []
  private queued = 0
  private ended = false
  private error?: Error
  /** Whether the consumer has had bytes, and when it was last woken for them (see fill). */
  private woken = false
  private wokeAt = 0
  private waiter?: {resolve: (r: IteratorResult<Buffer[]>) => void; reject: (e: Error) => void}
  private controller?: BodySource
  private discarded = 0
  private dumping?: {resolve: () => void}
  /** The slab being filled; its bytes before `used` are queued or handed out. */
  private slab?: Buffer
  private used = 0
  /** Full slabs with bytes still queued. */
  private queuedSlabs: Buffer[] = []
  /** Full slabs whose bytes have all been handed out. */
  private lentSlabs: Buffer[] = []

  attach(controller: BodySource): void {
    this.controller = controller
  }

  push(chunk: Buffer): void {
    if (this.dumping) {
      this.discard(chunk.length)
      return
    }
    for (let at = 0; at < chunk.length; ) {
      const n = chunk.copy(this.room(), 0, at)
      this.fill(n)
      at += n
    }
  }

  /**
   * Where the next bytes go: the free end of the slab being filled (a fresh slab when it is
   * full). A socket reads into it, then says how many bytes it put there with fill or skip.
   */
  room(): Buffer {
    if (!this.slab || this.used === SLAB_BYTES) {
      if (this.slab) this.queuedSlabs.push(this.slab)
      this.slab = takeSlab()
      this.used = 0
    }
    return this.slab.subarray(this.used)
  }

  /** `n` bytes of the body were put at the start of room(): hand them to the consumer. */
  fill(n: number): void {
    const start = this.used
    this.used += n
    if (this.dumping) {
      this.discard(n)
      return
    }
    this.enqueue(this.slab!, start, n)
    // A waiting consumer is woken at once for the first bytes, then for WAKE_BYTES or WAKE_MS
    // of them: TLS hands over 16 KiB records, and a wake-up per record was most of the cost.
    if (this.waiter && this.wakeNow()) {
      const {resolve} = this.waiter
      this.waiter = undefined
      resolve({value: this.take(), done: false})
      return
    }
    if (this.queued >= HIGH_WATER) this.controller?.pause()
  }

  private wakeNow(): boolean {
    const now = performance.now()
    if (this.woken && this.queued < WAKE_BYTES && now - this.wokeAt < WAKE_MS) return false
    this.woken = true
    this.wokeAt = now
    return true
  }

  /** Queue [start, start + n) of `slab`, as part of the last view where they are contiguous. */
  private enqueue(slab: Buffer, start: number, n: number): void {
    const last = this.queue.length - 1
    const prev = last >= 0 ? this.queue[last] : undefined
    if (prev && prev.buffer === slab.buffer && prev.byteOffset + prev.length === slab.byteOffset + start) {
      this.queue[last] = slab.subarray(prev.byteOffset - slab.byteOffset, start + n)
    } else {
      this.queue.push(slab.subarray(start, start + n))
    }
    this.queued += n
  }

  /** Everything queued, handed out: its full slabs become the consumer's to recycle. */
  private take(): Buffer[] {
    const batch = this.queue
    this.queue = []
    this.queued = 0
    this.lentSlabs.push(...this.queuedSlabs)
    this.queuedSlabs = []
    return batch
  }

  /** `n` bytes put at the start of room() are not the body's (a response head): pass over them. */
  skip(n: number): void {
    this.used += n
  }

  private discard(n: number): void {
    this.discarded += n
    if (this.discarded > DUMP_LIMIT) this.destroy()
  }

  recycle(): void {
    giveSlabs(this.lentSlabs)
    this.lentSlabs = []
  }

  release(): void {
    this.queue = []
    this.queued = 0
    giveSlabs([...this.lentSlabs, ...this.queuedSlabs, ...(this.slab ? [this.slab] : [])])
    this.lentSlabs = []
    this.queuedSlabs = []
    this.slab = undefined
  }

  end(error?: Error): void {
    if (this.ended) return
    this.ended = true
    this.error = error
    this.dumping?.resolve()
    if (!this.waiter) return
    const {resolve, reject} = this.waiter
    this.waiter = undefined
    // What was held back for the next wake-up goes first; the end comes with the next ask.
    if (this.queue.length > 0) resolve({value: this.take(), done: false})
    else if (error) reject(error)
    else resolve({value: undefined, done: true})
  }

  private next(): Promise<IteratorResult<Buffer[]>> {
    if (this.queue.length > 0) {
      const batch = this.take()
      if (this.controller?.paused && !this.ended) this.controller.resume()
      return Promise.resolve({value: batch, done: false})
    }
    if (this.error) return Promise.reject(this.error)
    if (this.ended) return Promise.resolve({value: undefined, done: true})
    return new Promise((resolve, reject) => (this.waiter = {resolve, reject}))
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer[]> {
    return {
      next: () => this.next(),
      return: async () => {
        this.destroy()
        return {value: undefined, done: true}
      },
    }
  }

  destroy(): void {
    if (!this.ended) this.controller?.abort(new Error('body not wanted'))
    this.end()
    this.queue = []
  }

  dump(): Promise<void> {
    this.queue = []
    this.queued = 0
    if (this.ended) return Promise.resolve()
    if (this.controller?.paused) this.controller.resume()
    return new Promise((resolve) => (this.dumping = {resolve}))
  }
}

/**
 * GET (or any request) through `dispatcher` with undici's handler interface; resolves with the
 * status and headers, the body following as a ChunkStream. Rejects like undici's request().
 */
export function streamRequest(dispatcher: Dispatcher, options: Dispatcher.DispatchOptions, signal?: AbortSignal): Promise<StreamedResponse> {
  return new Promise((resolve, reject) => {
    const body = new Batches()
    let started = false
    let controller: Dispatcher.DispatchController | undefined
    const onAbort = () => controller?.abort(signal?.reason instanceof Error ? signal.reason : new Error('aborted'))
    const cleanup = () => signal?.removeEventListener('abort', onAbort)
    if (signal?.aborted) {
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'))
      return
    }
    signal?.addEventListener('abort', onAbort, {once: true})
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c
        body.attach(c)
        if (signal?.aborted) onAbort()
      },
      onResponseStart(_c, statusCode, headers) {
        started = true
        resolve({statusCode, headers: flattenHeaders(headers as Record<string, string | string[] | undefined>), body})
      },
      onResponseData(_c, chunk) {
        body.push(chunk)
      },
      onResponseEnd() {
        cleanup()
        body.end()
      },
      onResponseError(_c, error) {
        cleanup()
        if (started) body.end(error)
        else reject(error)
      },
    }
    try {
      dispatcher.dispatch(options, handler)
    } catch (error) {
      cleanup()
      reject(error)
    }
  })
}

/** A Readable body (the probe's, from request()) as batches, for code written for ChunkStream. */
export function fromReadable(readable: Dispatcher.ResponseData['body']): ChunkStream {
  return {
    async *[Symbol.asyncIterator]() {
      for await (const chunk of readable) yield [chunk as Buffer]
    },
    destroy: () => void readable.destroy(),
    dump: () => readable.dump().catch(() => {}),
    // Its chunks are the Readable's own.
    recycle: () => {},
    release: () => {},
  }
}
