import {Worker} from 'node:worker_threads'
import type {Dispatcher} from 'undici'
import {fetchRange, type RangeIo, type RangeRequest} from './range-fetch.js'
import {EndCell, errorFromWire, type FromThread, type ToThread} from './fetch-wire.js'

/**
 * Where a connection's requests run: on the main thread, or in one of the fetch threads.
 *
 * On one event loop a pull cannot use much more than one core for HTTP, TLS and writes (about
 * 500 MiB/s here). Fetch threads each own a share of the connections, with their own keep-alive
 * pool, and write their ranges themselves; the engine keeps the segments, the journal, the
 * hash and the progress in one place. What crosses is small: a request, batched counts and
 * written ranges, how it ended.
 */
export interface Fetcher {
  /** True when requests run elsewhere: their segment's end is shared through an EndCell. */
  readonly remote: boolean
  /**
   * @param lane the connection slot asking: a slot's requests go to the same thread, whose
   *   keep-alive pool holds the slot's connection (a server slow to answer charges a fresh
   *   connection its first-byte time again)
   */
  fetch(req: RangeRequest, io: RangeIo, signal: AbortSignal, end?: EndCell, lane?: number): Promise<number>
  /** The part file is open (or could not be): remote writers may (or cannot) use it. */
  partReady(ok: boolean): void
  /** The transfer is over: remote handles on the part file are closed when this settles. */
  close(): Promise<void>
}

/** Requests on this thread, through the engine's dispatcher. */
export function inlineFetcher(dispatcher: Dispatcher): Fetcher {
  return {
    remote: false,
    fetch: (req, io, signal) => fetchRange(dispatcher, req, io, signal),
    partReady: () => {},
    close: async () => {},
  }
}

interface Pending {
  io: RangeIo
  resolve(pos: number): void
  reject(error: Error): void
}

class FetchThread {
  private readonly worker: Worker
  private readonly pending = new Map<number, Pending>()
  private readonly closing = new Map<string, () => void>()
  private dead = false

  constructor(
    stallTimeoutMs: number,
    onExit: (thread: FetchThread) => void,
    private readonly onSlow: (path: string) => void,
  ) {
    this.worker = new Worker(new URL('./fetch-thread.js', import.meta.url), {workerData: {stallTimeoutMs}})
    this.worker.on('message', (m: FromThread) => this.receive(m))
    const die = (error: Error) => {
      if (this.dead) return
      this.dead = true
      for (const p of this.pending.values()) p.reject(error)
      this.pending.clear()
      for (const done of this.closing.values()) done()
      this.closing.clear()
      onExit(this)
    }
    this.worker.on('error', (error) => die(new Error(`a fetch thread failed: ${error.message}`)))
    this.worker.on('exit', (code) => die(new Error(`a fetch thread exited (code ${code})`)))
    // After the listeners: adding a 'message' listener refs the worker again.
    this.worker.unref()
  }

  /** The thread keeps the process alive while a request or a close runs in it, and only then. */
  private get idle(): boolean {
    return this.pending.size + this.closing.size === 0
  }

  start(id: number, p: Pending): void {
    if (this.idle) this.worker.ref()
    this.pending.set(id, p)
  }

  private settled(): void {
    if (this.idle && !this.dead) this.worker.unref()
  }

  post(message: ToThread): void {
    this.worker.postMessage(message)
  }

  close(path: string): Promise<void> {
    if (this.dead) return Promise.resolve()
    return new Promise((resolve) => {
      if (this.idle) this.worker.ref()
      this.closing.set(path, resolve)
      this.post({t: 'close', path})
    })
  }

  private receive(m: FromThread): void {
    if (m.t === 'slow') {
      this.onSlow(m.path)
      return
    }
    if (m.t === 'closed') {
      this.closing.get(m.path)?.()
      this.closing.delete(m.path)
      this.settled()
      return
    }
    const p = this.pending.get(m.id)
    if (!p) return
    switch (m.t) {
      case 'first':
        p.io.firstByte()
        break
      case 'progress':
        if (m.received > 0) p.io.received(m.received)
        for (let i = 0; i < m.written.length; i += 2) p.io.written(m.written[i], m.written[i + 1] - m.written[i])
        break
      case 'end':
        this.pending.delete(m.id)
        this.settled()
        if (m.error) p.reject(errorFromWire(m.error))
        else p.resolve(m.pos)
        break
    }
  }
}

/**
 * Fetch threads shared by every pull in the process (a model's files run at the same time): a
 * connection slot's requests go to one thread (lane modulo the pool's size), so the slots
 * spread evenly and each keeps its keep-alive connection. The threads are unref'd: they never
 * keep the process alive.
 */
class FetchThreadPool {
  private readonly threads = new Map<number, FetchThread>()
  private nextId = 1
  /** Part files open now, and whether they could be: a thread started later learns of them too. */
  private readonly ready = new Map<string, boolean>()
  /** Who is told when a part file's writes wait on the disk, by part file (its transfer). */
  readonly slow = new Map<string, () => void>()

  constructor(
    public size: number,
    private readonly stallTimeoutMs: number,
  ) {}

  fetch(partPath: string, req: RangeRequest, io: RangeIo, signal: AbortSignal, end: EndCell, lane: number): Promise<number> {
    if (signal.aborted) return Promise.resolve(req.from)
    const thread = this.pick(lane)
    const id = this.nextId++
    return new Promise<number>((resolve, reject) => {
      const onAbort = () => thread.post({t: 'stop', id})
      signal.addEventListener('abort', onAbort, {once: true})
      const settle = () => signal.removeEventListener('abort', onAbort)
      thread.start(id, {
        io,
        resolve: (pos) => (settle(), resolve(pos)),
        reject: (error) => (settle(), reject(error)),
      })
      end.set(io.end())
      thread.post({t: 'fetch', id, req, partPath, end: end.buffer})
    })
  }

  partReady(path: string, ok: boolean): void {
    this.ready.set(path, ok)
    for (const thread of this.threads.values()) thread.post({t: 'part', path, ok})
  }

  async closePart(path: string): Promise<void> {
    this.ready.delete(path)
    this.slow.delete(path)
    await Promise.all([...this.threads.values()].map((thread) => thread.close(path)))
  }

  /** The lane's thread, started when first needed (and again if it died). */
  private pick(lane: number): FetchThread {
    const index = lane % this.size
    let thread = this.threads.get(index)
    if (!thread) {
      const started = new FetchThread(
        this.stallTimeoutMs,
        (dead) => {
          if (this.threads.get(index) === dead) this.threads.delete(index)
        },
        (path) => this.slow.get(path)?.(),
      )
      for (const [path, ok] of this.ready) started.post({t: 'part', path, ok})
      this.threads.set(index, started)
      thread = started
    }
    return thread
  }
}

const pools = new Map<number, FetchThreadPool>()

/**
 * A transfer's requests in `threads` fetch threads, writing to `partPath`. The pool is the
 * process's (one per stall timeout, which is each thread's dispatcher's); it grows, never
 * shrinks, when a pull asks for more threads. `slow`: told when the threads' writes to
 * `partPath` wait on the disk.
 */
export function threadFetcher(threads: number, stallTimeoutMs: number, partPath: string, slow?: () => void): Fetcher {
  let pool = pools.get(stallTimeoutMs)
  if (!pool) pools.set(stallTimeoutMs, (pool = new FetchThreadPool(threads, stallTimeoutMs)))
  pool.size = Math.max(pool.size, threads)
  if (slow) pool.slow.set(partPath, slow)
  const p = pool
  return {
    remote: true,
    fetch: (req, io, signal, end = new EndCell(), lane = 0) => p.fetch(partPath, req, io, signal, end, lane),
    partReady: (ok) => p.partReady(partPath, ok),
    close: () => p.closePart(partPath),
  }
}
