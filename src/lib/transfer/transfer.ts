import {setMaxListeners} from 'node:events'
import {dirname} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import type {Dispatcher} from 'undici'
import {ExitCode, MtuneError} from '../errors.js'
import type {Probe} from '../net/probe.js'
import {headersFor} from '../net/credentials.js'
import {rangeRoute} from '../net/dispatcher.js'
import {redact} from '../net/request.js'
import {formatBytes} from '../units.js'
import {ConnectionController} from './connection-controller.js'
import {JUDGE_WINDOW_MS, Ramp} from './ramp.js'
import type {Connection, ConnectionContext} from './connection.js'
import {Slots} from './slots.js'
import {isDiskError} from './range-fetch.js'
import {inlineFetcher, threadFetcher, type Fetcher} from './fetch-threads.js'
import {checkFreeSpace, type Destination} from './destination.js'
import {Meter} from './meter.js'
import {checkMirror} from './mirror-check.js'
import {PartialFile} from './partial-file.js'
import {LinkRenewal} from './link-renewal.js'
import {LinkDeadline} from './link-deadline.js'
import {RateBook} from './rate-book.js'
import {Recovery} from './recovery.js'
import {keptBytesDiffer} from './resume-check.js'
import type {RangeSet} from './range-set.js'
import {SegmentManager} from './segment-manager.js'
import {SourcePool, newSource, type Source} from './source-pool.js'
import {FileChanged, type StartOver, diskError, interrupted, keptBytesBad, runAgain} from './transfer-errors.js'
import {TokenBucket} from './token-bucket.js'
import {DEFAULTS, MIN_CHUNK_SIZE, type PullEvents, type PullOptions, type PullResult} from './pull-types.js'
import {validatorsOf} from './previous-pull.js'
import {POOL_MAX_MS} from './write-gate.js'

const TICK_MS = 100
const CHECKPOINT_MS = 1_000
/** Files smaller than this are fetched on the main thread: a fetch thread's start costs more. */
const THREADS_FROM = 64 * 1024 * 1024
/**
 * How long after the writes last waited on the disk no connections are added: the write gate's
 * longest spell in the pool (POOL_MAX_MS), then its second of writing directly that sends them
 * back there, with room to spare.
 */
const DISK_PACE_MS = POOL_MAX_MS + 4_000

/** What one attempt at the file starts from. */
export interface TransferSetup {
  options: PullOptions
  events: PullEvents
  dispatcher: Dispatcher
  dest: Destination
  /** The first request's answer: the file's size, validators and first bytes. */
  probed: Probe
  /** The sha256 the file must have, and who said so (--sha256, the server), for the message when it has not. */
  expected?: string
  expectedFrom?: string
  /** The server's validators take turns, so `probed` carries none (backend-copies.ts). */
  validatorsTakeTurns?: boolean
  /**
   * Bytes an earlier attempt of this same pull fetched and left on disk for this one (kept when
   * the copies check found no change): not a resume to speak of, and counted as fetched.
   */
  carriedOver?: number
  mirrors: string[]
  /** When the pull began (performance.now()). */
  started: number
}

/**
 * One attempt at one version of the file: resumes from what is on disk, wires the parts (the
 * sources and their links, the segments, the ramp, recovery, the connection slots, the partial
 * file), runs the monitor tick (progress, ramp, stragglers, checkpoints), then verifies and puts
 * the file in place, or stops everything and keeps what is on disk.
 */
export class Transfer {
  private readonly sources = new SourcePool()
  private readonly primary: Source
  private readonly segments: SegmentManager
  private readonly ramp: Ramp<Source>
  private readonly recovery: Recovery
  private readonly rates: RateBook
  private readonly slots: Slots
  private readonly received = new Meter()
  private readonly written = new Meter()
  private readonly ranged: boolean
  private readonly size?: number
  private readonly minSplit: number
  private ctx!: ConnectionContext
  private partial!: PartialFile
  /** Where the connections' requests run: here, or in fetch threads. */
  private readonly fetcher: Fetcher
  private resumedBytes = 0

  /** Bytes received from the network by this attempt, including any thrown away. */
  get bytesFetched(): number {
    return this.received.total
  }
  private stopping = false
  private settle!: {resolve: () => void; reject: (e: unknown) => void}
  /** Aborted when the transfer stops (done, failed, Ctrl-C): no backoff or cooldown wait outlives it. */
  private readonly halt = new AbortController()
  private lastCheckpoint = performance.now()
  private readonly trustedOrigin: string
  private readonly links: LinkRenewal
  /** A presigned link given as the URL: warned about when it will expire before the pull is done. */
  private readonly deadline?: LinkDeadline
  /** On resume: the start-over the kept bytes call for, once known (undefined: they are the server's). */
  private keptCheck?: Promise<StartOver | undefined>
  private readonly checking = new AbortController()

  private readonly options: PullOptions
  private readonly events: PullEvents
  /** When the part file's writes last waited on the disk (write-gate.ts). */
  private slowDiskAt = -Infinity

  constructor(private readonly setup: TransferSetup) {
    const {options, events, dispatcher, dest, probed} = setup
    this.options = options
    this.events = events
    const file = probed.file
    const now = performance.now()
    this.size = file.size
    this.ranged = file.ranges && file.size !== undefined
    this.minSplit = Math.max(MIN_CHUNK_SIZE, Math.min(DEFAULTS.chunkSize, options.chunkSize ?? DEFAULTS.chunkSize))
    this.rates = new RateBook(this.minSplit, options.chunkSize)
    this.trustedOrigin = new URL(file.url).origin
    // Every waiting connection slot listens to it.
    setMaxListeners(0, this.halt.signal)
    const headers = headersFor(file.finalUrl, this.trustedOrigin, options.headers ?? {})
    this.primary = newSource(file.url, file.finalUrl, {etag: file.etag, lastModified: file.lastModified}, true, now, headers)
    this.deadline = LinkDeadline.of(this.primary)
    this.links = new LinkRenewal(dispatcher, this.trustedOrigin, options.headers ?? {}, {
      info: (m) => this.events.info?.(m),
      changed: (why) => this.fail(new FileChanged(why)),
    })
    this.sources.add(this.primary)
    const initial = options.connections ?? DEFAULTS.connections
    const max = Math.max(initial, options.maxConnections ?? Math.max(DEFAULTS.maxConnections, initial))
    const controller = new ConnectionController({initial: this.ranged ? initial : 1, max: this.ranged ? max : 1}, now)
    this.ramp = new Ramp(
      controller,
      () => {
        const now = performance.now()
        // Held back by --limit-rate, more connections cannot gain anything and only cost the
        // server: a 10 MiB/s pull grew to 40 connections on the noise of the cap's bursts.
        const throughput = this.received.rate(now, JUDGE_WINDOW_MS)
        const capped = this.ctx?.limiter?.binding(now, JUDGE_WINDOW_MS, throughput) ?? false
        // Nor while the disk sets the pace: a step's gain would be the noise of its writes'
        // waits (a pull onto a disk at 50 MB/s once grew to 64 connections).
        const diskBound = now - this.slowDiskAt < DISK_PACE_MS
        return {
          connections: this.slots.connections,
          received: this.received.total,
          throughput,
          room: !capped && !diskBound && (this.segments.hasPending || this.segments.largestAvailable >= this.minSplit),
        }
      },
      {
        stepped: () => this.slots.fill(),
        limited: (source, here, target) => {
          const where = source.primary ? 'the server' : `mirror ${redact(source.url)}`
          this.events.warn?.(`${where} refuses connections beyond ${here}: holding at ${target} connection(s)`)
        },
        debug: (m) => this.debug(m),
      },
    )
    this.recovery = new Recovery({
      sources: this.sources,
      links: this.links,
      ramp: this.ramp,
      ranged: this.ranged,
      maxRetries: options.maxRetries ?? DEFAULTS.maxRetries,
      random: options.random ?? Math.random,
      slots: () => this.slots.count,
      warn: (m) => this.events.warn?.(m),
      fail: (error) => this.fail(error),
      diskError: (cause) => this.diskError(cause),
    })
    this.segments = new SegmentManager([], this.minSplit, (segment) => this.slots.cut(segment))
    this.fetcher = this.usesThreads() ? threadFetcher(options.threads!, options.stallTimeoutMs ?? DEFAULTS.stallTimeoutMs, dest.partPath, () => this.slowDisk()) : inlineFetcher(dispatcher)
    this.slots = new Slots({
      segments: this.segments,
      sources: this.sources,
      links: this.links,
      ramp: this.ramp,
      recovery: this.recovery,
      rates: this.rates,
      fetcher: this.fetcher,
      primary: this.primary,
      ranged: this.ranged,
      minSplit: this.minSplit,
      budget: options.budget,
      halt: this.halt.signal,
      stopping: () => this.stopping,
      io: () => this.ctx,
      fail: (error) => this.fail(error),
      ended: () => this.checkDone(),
      debug: (m) => this.debug(m),
    })
  }

  /**
   * Fetch threads pay off only for a big file at full speed: not under --limit-rate (one token
   * bucket, here), not for a single stream, and not with a part file a test injects.
   */
  private usesThreads(): boolean {
    const o = this.options
    return (o.threads ?? 0) > 0 && this.ranged && (this.size ?? 0) >= (o.threadsFrom ?? THREADS_FROM) && !o.limitRate && !o.limiter && !o.openPartFile
  }

  async run(): Promise<PullResult> {
    const {file} = this.setup.probed
    const turns = this.setup.validatorsTakeTurns ? {validatorsTakeTurns: true as const} : {}
    const identity = {url: redact(file.url), size: file.size, etag: file.etag, lastModified: file.lastModified, sha256: this.setup.expected, ranges: this.ranged, ...turns}
    const partial = await PartialFile.load(this.setup.dest, identity, {warn: (m) => this.events.warn?.(m), info: (m) => this.events.info?.(m), debug: (m) => this.debug(m), slow: () => this.slowDisk()}, this.options.adopt)
    this.partial = partial
    const fresh = partial.fresh
    // What this run's own earlier attempt left is this run's, not a resume.
    const carried = this.setup.carriedOver !== undefined
    this.resumedBytes = carried ? 0 : partial.kept.total
    const size = this.size
    let done = false
    try {
      // Small files (a config.json) often come without ranges; that is worth saying only for big ones.
      if (!this.ranged && (size === undefined || size >= 8 * 1024 * 1024)) {
        this.events.info?.(
          `${file.size === undefined ? 'the server gives no size' : 'the server does not support ranges'}: downloading over one connection; an interrupted pull starts over`,
        )
      }
      if (!fresh && size !== undefined && !carried) {
        this.events.info?.(`resuming: ${formatBytes(this.resumedBytes)} of ${formatBytes(size)} already on disk`)
      }
      const room =
        size === undefined
          ? {}
          : await checkFreeSpace(this.setup.dest, size, partial.kept.total, this.options.elsewhere).catch(async (error) => {
              await partial.abandon()
              throw error
            })
      if (this.fetcher.remote) this.debug(`requests run in ${this.options.threads} fetch thread(s)`)
      this.debug(rangeRoute(this.setup.dispatcher, this.primary.target))
      // A hash that cannot be finished stops the pull now, not at the end; what is on disk is kept.
      const opening = partial.open(size, {...room, open: this.options.openPartFile, elsewhere: this.options.elsewhere}, (e) =>
        this.fail(new MtuneError('hash-failed', `${e.message}: the pull stopped; ${runAgain(this.ranged)}`, ExitCode.failure, {cause: e})),
      )
      opening.then(
        () => this.fetcher.partReady(true),
        () => this.fetcher.partReady(false),
      )
      if (!fresh && this.ranged) this.checkKept(partial.kept, partial.adoptedFrom)
      const missing = size === undefined ? [{start: 0, end: Number.MAX_SAFE_INTEGER}] : partial.kept.missing(size)
      this.segments.reset(missing)
      this.ctx = {
        fetcher: this.fetcher,
        size,
        segments: this.segments,
        part: partial.writer,
        limiter: this.options.limiter ?? (this.options.limitRate ? new TokenBucket(this.options.limitRate) : undefined),
        onWritten: (connection, start, bytes) => this.recordWrite(connection, start, bytes),
        onReceived: (bytes) => this.received.add(bytes),
        onFirstByte: () => {
          if (this.ranged && !this.stopping) this.ramp.firstByte(performance.now())
        },
        requestBytes: () => this.rates.requestBytes(this.slots.connections, performance.now()),
      }
      await this.download(opening)
      const result = await this.finish()
      done = true
      return result
    } finally {
      await this.shutdown()
      // Without ranges the next run cannot continue these bytes; on a full disk they are in the way.
      if (!done && !this.ranged) await partial.discard()
    }
  }

  /** A connection's bytes reached the part file: the journal, its segment, its source and the count move on. */
  private recordWrite(connection: Connection, start: number, bytes: number): void {
    this.partial.record(start, start + bytes)
    this.segments.advance(connection.segment, bytes)
    this.sources.served(connection.source, bytes)
    this.written.add(bytes)
    this.recovery.progressed()
  }

  /** Beside the transfer, so that it costs no time: a difference stops the pull, which starts over. */
  private checkKept(kept: RangeSet, adoptedFrom: string | undefined): void {
    const differs = keptBytesDiffer(this.setup.dispatcher, this.primary.target, this.primary.headers, this.setup.dest.partPath, kept, this.checking.signal)
    const check = differs.then((at) => (at === undefined ? undefined : keptBytesBad(at, adoptedFrom)))
    this.keptCheck = check
    void check.then((bad) => bad && this.fail(bad))
  }

  private async download(opening: Promise<unknown>): Promise<void> {
    const settled = new Promise<void>((resolve, reject) => (this.settle = {resolve, reject}))
    // It may fail while the part file is still opening, before anyone awaits it.
    settled.catch(() => {})
    const onAbort = () => this.fail(interrupted(this.ranged))
    this.options.signal?.addEventListener('abort', onAbort, {once: true})
    if (this.options.signal?.aborted) onAbort()
    const timer = setInterval(() => this.tick(), TICK_MS)
    try {
      this.startMirrors()
      // The probe's body is already streaming: the first connection keeps reading it.
      const {response, start, end} = this.setup.probed
      const first = this.segments.hasPending ? this.segments.acquireAt(start, end) : undefined
      if (first && response) this.slots.start(first, {response, end})
      else {
        if (first) this.segments.release(first)
        await this.setup.probed.response?.body.dump().catch(() => {})
      }
      this.slots.fill()
      await opening.catch((error) => this.fail(error))
      this.checkDone()
      await settled
    } finally {
      clearInterval(timer)
      this.options.signal?.removeEventListener('abort', onAbort)
    }
  }

  private tick(): void {
    const now = performance.now()
    this.received.sample(now)
    this.written.sample(now)
    for (const c of this.slots.connections) c.meter.sample(now)
    this.partial.hashOn()
    const {rate, left} = this.emitProgress(now)
    if (this.stopping) return
    const late = this.deadline?.check(Date.now(), now - this.setup.started, left, rate)
    if (late) this.events.warn?.(late)
    if (this.ranged) {
      this.ramp.tick(now)
      this.slots.replaceStragglers(now)
    }
    this.slots.fill()
    this.checkDone()
    if (now - this.lastCheckpoint >= CHECKPOINT_MS) this.checkpoint(now)
    // Everything is handed out: the flush after the last byte should have little left to do.
    else if (this.ranged && !this.segments.hasPending) this.partial.preflush()
  }

  private emitProgress(now: number): {rate: number; left?: number} {
    const rate = this.written.rate(now, 3_000)
    const done = this.partial.written.total
    const left = this.size === undefined ? undefined : this.size - done
    this.events.progress?.({
      size: this.size,
      done,
      rate,
      etaSeconds: left !== undefined && rate > 0 ? left / rate : undefined,
      connections: this.slots.connections.size,
      elapsedMs: now - this.setup.started,
      fetched: this.written.total,
    })
    return {rate, left}
  }

  private checkpoint(now: number): void {
    this.lastCheckpoint = now
    void this.partial.checkpoint().catch((error) => {
      if (isDiskError(error)) this.fail(this.diskError(error))
    })
  }

  private startMirrors(): void {
    if (this.setup.mirrors.length === 0) return
    if (!this.ranged || !this.size) {
      this.events.warn?.('mirrors are only used when the server supports ranges; ignoring --mirror')
      return
    }
    for (const url of this.setup.mirrors) {
      void checkMirror(this.setup.dispatcher, url, this.primary, this.size, this.options.headers ?? {}, this.trustedOrigin).then(({source, rejected}) => {
        if (this.stopping) return
        if (source) {
          this.sources.add(source)
          this.events.info?.(`mirror ${redact(url)} serves the same file: using it`)
          this.debug(rangeRoute(this.setup.dispatcher, source.target))
          this.slots.fill()
        } else {
          this.sources.rejected(url, rejected ?? 'unknown')
          this.events.warn?.(`not using mirror ${redact(url)}: ${rejected}`)
        }
      })
    }
  }

  /**
   * The disk, not the network, sets the pace: told each time (the pull says it once), and no
   * connections are added for DISK_PACE_MS after.
   */
  private slowDisk(): void {
    this.slowDiskAt = performance.now()
    this.events.slowDisk?.(dirname(this.setup.dest.partPath))
  }

  private debug(message: string): void {
    this.events.debug?.(`${((performance.now() - this.setup.started) / 1000).toFixed(2)}s ${message}`)
  }

  private checkDone(): void {
    if (this.stopping || this.slots.count > 0) return
    if (this.segments.done) {
      this.settle.resolve()
      return
    }
    if (this.sources.alive.length === 0) this.fail(new MtuneError('remote', 'no source left to download from', ExitCode.remote))
  }

  private fail(error: unknown): void {
    if (this.stopping) return
    this.stopping = true
    this.halt.abort()
    this.slots.stopAll()
    this.settle?.reject(error)
  }

  private async finish(): Promise<PullResult> {
    this.stopping = true
    const size = this.partial.written.total
    if (this.size !== undefined && size !== this.size) throw new Error(`internal: ${size} of ${this.size} bytes written`)
    // A short remainder can be done before the check is: nothing is put in place unchecked.
    const bad = await this.keptCheck
    if (bad) throw bad
    const digest = await this.partial.finish(this.setup.expected ? {sha256: this.setup.expected, from: this.setup.expectedFrom} : undefined, this.options.verify, (m) => this.debug(m))
    const seconds = (performance.now() - this.setup.started) / 1000
    const fetchedNow = this.bytesFetched + (this.setup.carriedOver ?? 0)
    this.emitProgress(performance.now())
    return {
      url: redact(this.setup.probed.file.url),
      path: this.setup.dest.path,
      size,
      sha256: digest,
      ...validatorsOf(this.setup.probed.file),
      verified: Boolean(this.setup.expected),
      alreadyComplete: false,
      pulledByAnother: false,
      seconds,
      averageRate: seconds > 0 ? (size - this.resumedBytes) / seconds : 0,
      connections: this.slots.peak,
      retries: this.recovery.retries,
      bytesFetched: fetchedNow,
      resumedBytes: this.resumedBytes,
      mirrors: this.sources.mirrorReport(),
    }
  }

  /** Whatever happened: connections stopped, what is on disk recorded, files closed. */
  private async shutdown(): Promise<void> {
    this.stopping = true
    this.halt.abort()
    this.ramp.close()
    this.checking.abort()
    this.slots.stopAll()
    for (let i = 0; this.slots.count > 0 && i < 100; i++) await sleep(20)
    await this.partial?.opening()
    // The fetch threads' handles on the part file: closed before it is.
    await this.fetcher.close()
    await this.partial?.close()
  }

  private diskError(cause: unknown): MtuneError {
    return diskError(cause, this.setup.dest.partPath, this.partial.written.total, this.size, this.ranged)
  }
}
