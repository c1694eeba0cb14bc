import {setMaxListeners} from 'node:events'
import {rename, rm} from 'node:fs/promises'
import {dirname} from 'node:path'
import {fsyncDirectory} from '../fs-atomic.js'
import {setTimeout as sleep} from 'node:timers/promises'
import type {Dispatcher} from 'undici'
import {ExitCode, MtuneError, errorMessage} from '../errors.js'
import type {Probe} from '../net/probe.js'
import {headersFor} from '../net/credentials.js'
import {get, redact, signedUrlExpiry, type Response} from '../net/request.js'
import {TransferError, backoffDelay, cappedWait, classifyNetworkError, onUsedSocket} from '../net/retry-policy.js'
import {formatBytes} from '../units.js'
import {ConnectionController} from './connection-controller.js'
import {JUDGE_WINDOW_MS, Ramp} from './ramp.js'
import {Connection, isDiskError, type ConnectionContext} from './connection.js'
import {inlineFetcher, threadFetcher, type Fetcher} from './fetch-threads.js'
import {checkFreeSpace, fileExists, type Destination} from './destination.js'
import {Journal, currentBootId} from './journal.js'
import {Meter} from './meter.js'
import {checkMirror} from './mirror-check.js'
import {openPartFile, whenOpen, type PartFile} from './part-file.js'
import {PrefixHasher} from './prefix-hasher.js'
import {decideFailure, type FailureAction} from './failure-policy.js'
import {keptBytesDiffer} from './resume-check.js'
import type {RangeSet} from './range-set.js'
import {SegmentManager, remaining, type Segment} from './segment-manager.js'
import {SourcePool, newSource, renewalTime, type Source} from './source-pool.js'
import {TokenBucket} from './token-bucket.js'
import {DEFAULTS, type PullEvents, type PullOptions, type PullResult} from './pull-types.js'

/** The probe's response, read on by the first connection. */
export type Adopted = {response: Response; end?: number}

/** The whole file must be fetched again: it changed on the server, or a stream without ranges broke. */
export class StartOver extends Error {
  constructor(message: string, readonly changed: boolean) {
    super(message)
  }
}
export class FileChanged extends StartOver {
  constructor(message: string) {
    super(message, true)
  }
}


const TICK_MS = 100
const HASH_STEP = 8 * 1024 * 1024
/** Pieces are sized to end together once less than this many minimum pieces per connection is pending. */
const FINAL_PHASE = 1.5
const CHECKPOINT_MS = 1_000
/** Files smaller than this are fetched on the main thread: a fetch thread's start costs more. */
const THREADS_FROM = 64 * 1024 * 1024

export const interrupted = () => new MtuneError('interrupted', 'interrupted: run the same command again to resume', ExitCode.interrupted)

/** One attempt at one version of the file: resume state, connections, monitor, verification. */
export class Transfer {
  private readonly sources = new SourcePool()
  private readonly primary: Source
  private readonly segments: SegmentManager
  private readonly ramp: Ramp<Source>
  private readonly connections = new Set<Connection>()
  private readonly received = new Meter()
  private readonly written = new Meter()
  private readonly ranged: boolean
  private readonly size?: number
  private readonly minSplit: number
  private readonly maxRetries: number
  private readonly random: () => number
  private journal!: Journal
  private part?: PartFile
  /** Settles once the part file is open, or could not be. */
  private opening?: Promise<unknown>
  private hasher?: PrefixHasher
  private ctx!: ConnectionContext
  /** Where the connections' requests run: here, or in fetch threads. */
  private readonly fetcher: Fetcher
  private running = 0
  private peak = 0
  private retries = 0
  private failuresSinceProgress = 0
  private throttleSaid?: {target: number; at: number}
  private resumedBytes = 0
  private stopping = false
  private settle!: {resolve: () => void; reject: (e: unknown) => void}
  private checkpointing = false
  /** Aborted when the transfer stops (done, failed, Ctrl-C): no backoff or cooldown wait outlives it. */
  private readonly halt = new AbortController()
  private preflushed = false
  private lastCheckpoint = performance.now()
  private readonly mirrorReport: PullResult['mirrors'] = []
  private finishedRates: Array<{at: number; rate: number}> = []
  private readonly trustedOrigin: string
  /** On resume: how the kept bytes differ from the server's, once known (undefined: they do not). */
  private keptCheck?: Promise<string | undefined>
  private readonly checking = new AbortController()

  constructor(
    private readonly options: PullOptions,
    private readonly events: PullEvents,
    private readonly dispatcher: Dispatcher,
    private readonly dest: Destination,
    private readonly probed: Probe,
    private readonly expected: string | undefined,
    private readonly mirrors: string[],
    private readonly started: number,
  ) {
    const file = probed.file
    const now = performance.now()
    this.size = file.size
    this.ranged = file.ranges && file.size !== undefined
    this.minSplit = Math.max(64 * 1024, Math.min(DEFAULTS.chunkSize, options.chunkSize ?? DEFAULTS.chunkSize))
    this.maxRetries = options.maxRetries ?? DEFAULTS.maxRetries
    this.random = options.random ?? Math.random
    this.trustedOrigin = new URL(file.url).origin
    // Every waiting connection slot listens to it.
    setMaxListeners(0, this.halt.signal)
    const headers = headersFor(file.finalUrl, this.trustedOrigin, options.headers ?? {})
    this.primary = newSource(file.url, file.finalUrl, {etag: file.etag, lastModified: file.lastModified}, true, now, headers)
    this.primary.renewAt = renewalTime(signedUrlExpiry(file.finalUrl))
    this.sources.add(this.primary)
    const initial = options.connections ?? DEFAULTS.connections
    const max = Math.max(initial, options.maxConnections ?? Math.max(DEFAULTS.maxConnections, initial))
    const controller = new ConnectionController({initial: this.ranged ? initial : 1, max: this.ranged ? max : 1}, now)
    this.ramp = new Ramp(
      controller,
      () => ({
        connections: this.connections,
        received: this.received.total,
        throughput: this.received.rate(performance.now(), JUDGE_WINDOW_MS),
        room: this.segments.hasPending || this.segments.largestAvailable >= this.minSplit,
      }),
      {
        stepped: () => this.fillSlots(),
        limited: (source, here, target) => {
          const where = source.primary ? 'the server' : `mirror ${redact(source.url)}`
          this.events.warn?.(`${where} refuses connections beyond ${here}: holding at ${target} connection(s)`)
        },
        debug: (m) => this.debug(m),
      },
    )
    this.segments = new SegmentManager([], this.minSplit)
    this.segments.onCut = (segment) => {
      for (const c of this.connections) if (c.segment === segment) c.cut()
    }
    this.fetcher = this.usesThreads() ? threadFetcher(options.threads!, options.stallTimeoutMs ?? DEFAULTS.stallTimeoutMs, dest.partPath) : inlineFetcher(dispatcher)
  }

  /**
   * Fetch threads pay off only for a big file at full speed: not under --limit-rate (one token
   * bucket, here), not for a single stream, and not with a part file a test injects.
   */
  private usesThreads(): boolean {
    const o = this.options
    return (o.threads ?? 0) > 0 && this.ranged && (this.size ?? 0) >= (o.threadsFrom ?? THREADS_FROM) && !o.limitRate && !o.openPartFile
  }

  async run(): Promise<PullResult> {
    const {file} = this.probed
    const identity = {url: redact(file.url), size: file.size, etag: file.etag, lastModified: file.lastModified, sha256: this.expected, ranges: this.ranged}
    let loaded = Journal.load(this.dest.journalPath, identity, currentBootId())
    if (loaded.discarded) this.events.warn?.(`discarding the partial download: ${loaded.discarded}; starting over`)
    let fresh = loaded.written.total === 0
    if (!fresh && !(await fileExists(this.dest.partPath))) {
      this.events.warn?.('the partial file is gone: starting over')
      await loaded.journal.remove()
      loaded = Journal.load(this.dest.journalPath, identity, currentBootId())
      fresh = true
    }
    this.journal = loaded.journal
    this.resumedBytes = loaded.written.total
    const size = this.size
    try {
      // Small files (a config.json) often come without ranges; that is worth saying only for big ones.
      if (!this.ranged && (size === undefined || size >= 8 * 1024 * 1024)) {
        this.events.info?.(
          `${file.size === undefined ? 'the server gives no size' : 'the server does not support ranges'}: downloading over one connection; an interrupted pull starts over`,
        )
      }
      if (!fresh && size !== undefined) {
        this.events.info?.(`resuming: ${formatBytes(this.resumedBytes)} of ${formatBytes(size)} already on disk`)
      }
      if (size !== undefined) {
        await checkFreeSpace(this.dest, size - this.resumedBytes).catch(async (error) => {
          if (fresh) await this.journal.remove()
          throw error
        })
      }
      if (this.fetcher.remote) this.debug(`requests run in ${this.options.threads} fetch thread(s)`)
      const opening = this.openPart(fresh)
      opening.then(
        () => this.fetcher.partReady(true),
        () => this.fetcher.partReady(false),
      )
      if (!fresh && this.ranged) this.checkKept(loaded.written)
      this.opening = opening.catch(() => undefined)
      const missing = size === undefined ? [{start: 0, end: Number.MAX_SAFE_INTEGER}] : loaded.written.missing(size)
      this.segments.reset(missing)
      this.segments.worthCutting = (victim) => this.worthCutting(victim)
      this.sizePieces()
      this.ctx = {
        fetcher: this.fetcher,
        size,
        part: whenOpen(opening),
        limiter: this.options.limitRate ? new TokenBucket(this.options.limitRate) : undefined,
        onWritten: (connection, start, bytes) => {
          this.journal.recordWritten(start, start + bytes)
          this.segments.advance(connection.segment, bytes)
          connection.source.bytes += bytes
          connection.source.failures = 0
          this.written.add(bytes)
          this.failuresSinceProgress = 0
          // Between ticks too: the less is left to hash after the last byte, the sooner the digest.
          this.hasher?.extend(this.journal.writtenRanges.prefixEnd, HASH_STEP)
        },
        onReceived: (bytes) => this.received.add(bytes),
        onFirstByte: () => {
          if (this.ranged && !this.stopping) this.ramp.firstByte(performance.now())
        },
        requestBytes: () => this.requestBytes(),
      }
      await this.download(opening)
      return await this.finish()
    } finally {
      await this.shutdown()
    }
  }

  /**
   * Journal, part file and hasher, made ready while the first requests wait for their first
   * byte: the requests go out without waiting on the disk, and their writes wait for it.
   */
  private async openPart(fresh: boolean): Promise<PartFile> {
    // One turn of the event loop first, so that the requests just started reach their sockets
    // before the journal's and the part file's opening take thread-pool turns.
    await new Promise((resolve) => setImmediate(resolve))
    const begun = this.journal.begin()
    const part = await (this.options.openPartFile ?? openPartFile)(this.dest.partPath, this.size, fresh).catch(async (error) => {
      await begun.catch(() => {})
      if (fresh) await this.journal.remove()
      throw new MtuneError('not-writable', `cannot create ${this.dest.partPath}: ${errorMessage(error)}`, ExitCode.localDisk, {cause: error})
    })
    await begun.catch(async (error) => {
      await part.close().catch(() => {})
      throw new MtuneError('not-writable', `cannot write the resume journal ${this.dest.journalPath}: ${errorMessage(error)}`, ExitCode.localDisk, {cause: error})
    })
    this.part = part
    // A hash that cannot be finished stops the pull now, not at the end; what is on disk is kept.
    this.hasher = new PrefixHasher(this.dest.partPath, (e) => this.fail(new MtuneError('hash-failed', `${e.message}: the pull stopped; run the same command again to resume`, ExitCode.failure, {cause: e})))
    return part
  }

  /** Beside the transfer, so that it costs no time: a difference stops the pull, which starts over. */
  private checkKept(kept: RangeSet): void {
    this.keptCheck = keptBytesDiffer(this.dispatcher, this.primary.target, this.primary.headers, this.dest.partPath, kept, this.checking.signal)
    void this.keptCheck.then((why) => why && this.fail(new FileChanged(why)))
  }

  private async download(opening: Promise<PartFile>): Promise<void> {
    const settled = new Promise<void>((resolve, reject) => (this.settle = {resolve, reject}))
    // It may fail while the part file is still opening, before anyone awaits it.
    settled.catch(() => {})
    const onAbort = () => this.fail(interrupted())
    this.options.signal?.addEventListener('abort', onAbort, {once: true})
    if (this.options.signal?.aborted) onAbort()
    const timer = setInterval(() => this.tick(), TICK_MS)
    try {
      this.startMirrors()
      // The probe's body is already streaming: the first connection keeps reading it.
      const {response, start, end} = this.probed
      const first = this.segments.hasPending ? this.segments.acquireAt(start, end) : undefined
      if (first && response) this.spawn(first, {response, end})
      else {
        if (first) this.segments.release(first)
        await this.probed.response?.body.dump().catch(() => {})
      }
      this.fillSlots()
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
    for (const c of this.connections) c.meter.sample(now)
    this.hasher?.extend(this.journal.writtenRanges.prefixEnd)
    this.emitProgress(now)
    if (this.stopping) return
    if (this.ranged) {
      this.ramp.tick(now)
      this.replaceStragglers(now)
      this.sizePieces()
    }
    this.fillSlots()
    this.checkDone()
    if (now - this.lastCheckpoint >= CHECKPOINT_MS) void this.checkpoint()
    else if (!this.preflushed && this.ranged && !this.segments.hasPending && this.part) {
      // Everything is handed out: write back what is on disk so far while the last bytes come,
      // so that the flush after the last one has little left to do.
      this.preflushed = true
      void this.part.datasync().catch(() => {})
    }
  }

  private emitProgress(now: number): void {
    const rate = this.written.rate(now, 3_000)
    const done = this.journal.writtenRanges.total
    const left = this.size === undefined ? undefined : this.size - done
    this.events.progress?.({
      size: this.size,
      done,
      rate,
      etaSeconds: left !== undefined && rate > 0 ? left / rate : undefined,
      connections: this.connections.size,
      elapsedMs: now - this.started,
    })
  }

  private async checkpoint(): Promise<void> {
    if (this.checkpointing || !this.part) return
    this.checkpointing = true
    this.lastCheckpoint = performance.now()
    const part = this.part
    try {
      await this.journal.checkpoint(() => part.datasync())
    } catch (error) {
      if (isDiskError(error)) this.fail(diskFull(error, this.dest, this.journal.writtenRanges.total, this.size))
    } finally {
      this.checkpointing = false
    }
  }

  /** Start connections up to the target while there is work for them. */
  private fillSlots(): void {
    while (!this.stopping && this.running < this.ramp.target) {
      if (this.options.budget && !this.options.budget.tryAcquire(this.running === 0)) return
      const segment = this.acquire()
      if (!segment) {
        this.options.budget?.release()
        return
      }
      this.spawn(segment, undefined, true)
    }
  }

  /** `budgeted`: a connection from the shared budget was already taken for this slot. */
  private spawn(segment: Segment, adopted?: Adopted, budgeted = false): void {
    if (!budgeted && this.options.budget) this.options.budget.tryAcquire(true)
    this.running++
    this.peak = Math.max(this.peak, this.running)
    void this.slot(segment, adopted)
      .catch((error) => this.fail(error))
      .finally(() => {
        this.running--
        this.options.budget?.release()
        this.checkDone()
      })
  }

  /** The next piece, sized now; else a straggler's range, fetched afresh, may still end sooner. */
  private acquire(): Segment | undefined {
    if (this.segments.hasPending) this.sizePieces()
    return this.segments.acquire() ?? this.takeOverStraggler(performance.now(), true)
  }

  /** One connection slot: fetch segments until there is nothing left or too many slots run. */
  private async slot(initial: Segment, adopted?: Adopted): Promise<void> {
    let segment: Segment | undefined = initial
    let attempt = 0
    let served = false
    while (!this.stopping) {
      // Nothing left to hand out: a straggler's range, fetched afresh, may still end sooner.
      segment ??= this.running > this.ramp.target ? undefined : this.acquire()
      if (!segment) return
      const source = adopted ? this.primary : await this.pickSource()
      if (!source) {
        this.segments.release(segment)
        return
      }
      const connection = new Connection(segment, source, served, this.fetcher.remote)
      const before = segment.pos
      this.debug(`conn seg#${segment.id} ${segment.pos}-${segment.end} on ${source.primary ? 'primary' : redact(source.url)}`)
      let delay = 0
      this.connections.add(connection)
      source.active++
      try {
        await connection.run(this.ctx, adopted)
        served = segment.pos > before
      } catch (error) {
        served = false
        if (!connection.stopReason && !this.stopping) {
          // Cut before its first byte on a fresh socket: perhaps a server's limit per client.
          const refused = connection.firstByteAt === undefined && !onUsedSocket(error)
          delay = await this.onFailure(error, source, ++attempt, connection.target, refused)
        }
      } finally {
        this.debug(`end seg#${segment.id} at ${segment.pos}/${segment.end}${connection.stopReason ? ` (${connection.stopReason})` : ''}`)
        adopted = undefined
        this.connections.delete(connection)
        source.active--
        this.noteRate(connection)
        this.segments.release(segment)
      }
      if (segment.pos > before) attempt = 0
      segment = undefined
      if (delay > 0) await this.pause(delay)
    }
  }

  private noteRate(connection: Connection): void {
    if (connection.firstByteAt === undefined) return
    const now = performance.now()
    const seconds = (now - connection.firstByteAt) / 1000
    if (seconds < 0.3) return
    const rate = connection.meter.total / seconds
    this.sources.noteRate(connection.source, rate)
    if (!connection.stopReason) this.finishedRates.push({at: now, rate})
  }

  /**
   * Cutting into a running request aborts it and wastes what is in flight; it pays only when
   * the victim still needs a while (several times a request's first-byte time) to finish.
   */
  private worthCutting(victim: Segment): boolean {
    const now = performance.now()
    const c = [...this.connections].find((x) => x.segment === victim)
    if (!c || c.firstByteAt === undefined) return false
    const rate = Math.max(1, c.meter.rate(now, 1_000) || c.meter.total / Math.max(0.001, (now - c.firstByteAt) / 1000))
    const firstByte = (c.firstByteAt - c.startedAt) / 1000
    return (victim.requestEnd - victim.pos) / rate > Math.max(0.3, 4 * firstByte)
  }

  /** Without ranges the file is one piece; with them, never so big that a connection idles. */
  private sizePieces(): void {
    if (!this.ranged) {
      this.segments.pieceSize = Number.MAX_SAFE_INTEGER
      return
    }
    const target = Math.max(1, this.ramp.target)
    const pending = this.segments.pendingBytes
    // The last minimum-size piece or so for each connection: smaller pieces from here on.
    const endgame = pending < target * this.minSplit
    this.segments.smallestPiece = endgame ? Math.max(64 * 1024, Math.floor(this.minSplit / 4)) : this.minSplit
    this.segments.pieceSize = Math.max(this.segments.smallestPiece, Math.min(this.requestBytes(), this.share(pending, target)))
  }

  /**
   * What one piece should be. Far from the end, a share of what is pending (so pieces shrink as
   * the end nears). Near it, the share that makes the asking connection end when the others do:
   * the pending bytes fill up the connections that have least left, like water, and one that
   * is still busy past that level gets none. Plain shares would count those busy connections
   * too, and leave pieces over that start, first byte and all, just as the others end.
   */
  private share(pending: number, target: number): number {
    if (pending >= FINAL_PHASE * target * this.minSplit) return Math.ceil(pending / target)
    const held = [...this.connections].filter((c) => !c.stopReason).map((c) => remaining(c.segment))
    // The asking connection has nothing left; nor has a slot about to be filled.
    while (held.length < target - 1) held.push(0)
    held.push(0)
    held.sort((a, b) => a - b)
    let sum = pending
    for (let k = 0; k < held.length; k++) {
      sum += held[k]
      const level = sum / (k + 1)
      if (k + 1 === held.length || level <= held[k + 1]) return Math.ceil(level)
    }
    return Math.ceil(pending / target)
  }

  /**
   * Requests long enough that the time to first byte is a small cost (about 3 s of a typical
   * connection's transfer), short enough that a connection rarely has to abort one.
   */
  private requestBytes(): number {
    if (this.options.chunkSize) return Math.max(this.minSplit, this.options.chunkSize)
    const typical = this.typicalRate(performance.now()) ?? 4 * 1024 * 1024
    return Math.round(Math.min(64 * 1024 * 1024, Math.max(2 * this.minSplit, typical * 3)))
  }

  /**
   * What a healthy connection achieves: the median over running connections and those that
   * finished lately. Near the end only stragglers are left running, so they alone cannot say.
   */
  private typicalRate(now: number): number | undefined {
    this.finishedRates = this.finishedRates.filter((r) => now - r.at < 10_000)
    const rates = [...this.connections]
      .filter((c) => c.firstByteAt !== undefined && now - c.firstByteAt >= 500 && !c.stopReason)
      .map((c) => recentRate(c, now))
      .concat(this.finishedRates.map((r) => r.rate))
      .sort((a, b) => a - b)
    if (rates.length < 3) return undefined
    return rates[Math.floor(rates.length / 2)]
  }

  private async pickSource(): Promise<Source | undefined> {
    for (;;) {
      if (this.stopping) return undefined
      const now = performance.now()
      const source = this.sources.pick(now)
      // A signed link about to expire is renewed before a new request is started with it.
      if (source?.renewAt !== undefined && Date.now() > source.renewAt && source.target !== source.url) {
        const renewed = await this.resolveAgain(source, 'is about to expire')
        if (!renewed || (source.renewAt !== undefined && Date.now() > source.renewAt)) source.renewAt = undefined
        continue
      }
      if (source) return source
      const next = this.sources.nextAvailableAt()
      if (next === undefined) return undefined
      await this.pause(Math.max(50, next - now))
    }
  }

  /**
   * What a failure means, as failure-policy.ts decides it from the facts: the engine acts on
   * the decision (fail, drop the source, renew a signed link, throttle, rest) and, unless the
   * pull or the source ended, counts the failure and returns the delay before the next attempt.
   */
  private async onFailure(error: unknown, source: Source, attempt: number, usedTarget?: string, maybeRefused = false): Promise<number> {
    const disk = isDiskError(error)
    const e = error instanceof TransferError ? error : classifyNetworkError(error)
    const now = performance.now()
    if (!disk) this.retries++
    // Maybe a limit on connections per client, which the next tick looks into.
    if (!disk && this.ranged && maybeRefused && e.kind === 'transient' && e.status === undefined) this.ramp.refused(source, now)
    if (!disk && e.kind === 'transient') source.failures++
    const where = source.primary ? '' : ` (mirror ${redact(source.url)})`
    const decision = decideFailure({
      kind: e.kind,
      status: e.status,
      message: e.message,
      disk,
      ranged: this.ranged,
      primary: source.primary,
      others: this.sources.alive.length > 1,
      signed: source.target !== source.url,
      staleLink: usedTarget !== undefined && usedTarget !== source.target,
      renewing: Boolean(source.resolving),
      renewedJustNow: now - source.resolvedAt <= 1_000,
      sourceFailures: source.failures,
    })
    if (!(await this.act(decision, e, source, now, attempt, where))) return 0
    this.failuresSinceProgress++
    // Allow for one round of every running connection failing at once, as when a server turns
    // away the first connections: a count lowered by that same round must not end the pull.
    if (this.failuresSinceProgress > this.maxRetries + Math.max(this.ramp.target, this.running)) {
      this.fail(
        new MtuneError(
          'retries',
          `giving up after ${this.failuresSinceProgress} failed attempts in a row with no progress; last error: ${e.message}${where}. Run the same command again to resume`,
          ExitCode.remote,
          {cause: e},
        ),
      )
      return 0
    }
    return backoffDelay(attempt, this.random, undefined, e.retryAfterMs)
  }

  /** Carry out a failure decision; true when the request is to be tried again (after a backoff). */
  private async act(d: FailureAction, e: TransferError, source: Source, now: number, attempt: number, where: string): Promise<boolean> {
    switch (d.do) {
      case 'fail': {
        const errors = {
          disk: () => diskFull(e.details.cause ?? e, this.dest, this.journal.writtenRanges.total, this.size),
          'not-resumable': () => new StartOver(`the download broke (${e.message}) and the server cannot continue it`, false),
          changed: () => new FileChanged(e.message),
          refused: () => new MtuneError('remote', `cannot download ${redact(source.url)}: ${e.message}`, ExitCode.remote, {cause: e}),
        }
        this.fail(errors[d.why]())
        return false
      }
      case 'drop':
        this.dropSource(source, d.why)
        return false
      case 'renew':
        if (d.join && (await source.resolving)) return true
        if (d.renew && (await this.resolveAgain(source, `was refused (${e.status})`))) return true
        return this.act(d.otherwise, e, source, now, attempt, where)
      case 'throttle': {
        const target = this.ramp.throttled(now, this.running)
        const wait = e.retryAfterMs === undefined ? backoffDelay(attempt, this.random) : cappedWait(e.retryAfterMs).ms
        source.cooldownUntil = Math.max(source.cooldownUntil, now + wait)
        // A burst of refusals is one event: say it again only when something new is to be said.
        const said = this.throttleSaid
        if (!said || said.target !== target || now - said.at > 5_000) {
          this.throttleSaid = {target, at: now}
          const words = e.retryAfterMs === undefined ? `${(wait / 1000).toFixed(1)}s` : cappedWait(e.retryAfterMs).words
          this.events.warn?.(`${e.message}${where}: waiting ${words}, then ${target} connection(s)`)
        }
        return true
      }
      case 'rest':
        source.cooldownUntil = Math.max(source.cooldownUntil, now + backoffDelay(source.failures, this.random))
        return true
      case 'retry':
        return true
    }
  }

  /** Ask the source's original URL where the file is now (a fresh signed link); shared. */
  private resolveAgain(source: Source, why: string): Promise<boolean> {
    source.resolving ??= this.resolveNow(source, why).finally(() => (source.resolving = undefined))
    return source.resolving
  }

  private async resolveNow(source: Source, why: string): Promise<boolean> {
    source.resolvedAt = performance.now()
    try {
      const headers = headersFor(source.url, this.trustedOrigin, this.options.headers ?? {})
      const res = await get(this.dispatcher, source.url, {...headers, range: 'bytes=0-0', 'accept-encoding': 'identity'})
      await res.body.dump().catch(() => {})
      if (res.status !== 206 && res.status !== 200) return false
      if (source.etag && res.headers.etag && res.headers.etag !== source.etag) {
        this.fail(new FileChanged(`its ETag changed (${source.etag} -> ${res.headers.etag})`))
        return true
      }
      this.events.info?.(`the link to ${redact(source.url)} ${why}: resolved it again, continuing the missing ranges`)
      source.target = res.url
      source.headers = headersFor(res.url, this.trustedOrigin, this.options.headers ?? {})
      source.renewAt = renewalTime(signedUrlExpiry(res.url))
      return true
    } catch {
      return false
    }
  }

  private dropSource(source: Source, why: string): void {
    if (!source.alive) return
    this.sources.drop(source, why)
    this.events.warn?.(`dropping ${source.primary ? 'source' : 'mirror'} ${redact(source.url)}: ${why}`)
    if (this.sources.alive.length === 0) {
      this.fail(new MtuneError('remote', `no source left to download from; last: ${why}`, ExitCode.remote))
    }
  }

  private startMirrors(): void {
    if (this.mirrors.length === 0) return
    if (!this.ranged || !this.size) {
      this.events.warn?.('mirrors are only used when the server supports ranges; ignoring --mirror')
      return
    }
    for (const url of this.mirrors) {
      void checkMirror(this.dispatcher, url, this.primary, this.size, this.options.headers ?? {}, this.trustedOrigin).then(({source, rejected}) => {
        if (this.stopping) return
        if (source) {
          this.sources.add(source)
          this.events.info?.(`mirror ${redact(url)} serves the same file: using it`)
          this.fillSlots()
        } else {
          this.mirrorReport.push({url: redact(url), used: false, bytes: 0, dropped: rejected})
          this.events.warn?.(`not using mirror ${redact(url)}: ${rejected}`)
        }
      })
    }
  }

  /**
   * A connection far below its peers' median for a few seconds gets a fresh connection for
   * the rest of its range. At the very end (`endgame`), an idle slot may take over any
   * connection that would finish much later than a fresh one.
   */
  private takeOverStraggler(now: number, endgame: boolean): Segment | undefined {
    const median = this.typicalRate(now)
    if (!median) return undefined
    for (const c of this.connections) {
      if (c.stopReason || c.firstByteAt === undefined) continue
      const age = now - c.firstByteAt
      const rate = recentRate(c, now)
      const left = remaining(c.segment)
      if (left < 64 * 1024) continue
      // Far below for a while, or clearly below for two seconds: either way a fresh connection
      // wins. "A while" scales with the time to first byte, which a connection still in TCP
      // slow start on a long path needs several of.
      const firstByteMs = c.firstByteAt - c.startedAt
      const judgeAfter = Math.min(1_000, Math.max(300, 4 * firstByteMs))
      const slow = (age >= judgeAfter && rate < median / 8) || (age >= 2_000 && rate < median / 4)
      // At the end, with a slot idle: a connection that would finish well after a fresh one
      // (a first byte, then the rest at the median rate) hands its range over.
      const fresh = Math.max(0.1, firstByteMs / 1000) + left / median
      const late = endgame && age >= Math.max(150, 2 * firstByteMs) && left / Math.max(rate, 1) > 2 * fresh
      if (!slow && !late) continue
      const segment = this.segments.takeOver(c.segment)
      if (!segment) continue
      this.debug(`replacing seg#${c.segment.id} (${slow ? 'slow' : 'late'}: ${Math.round(rate / 1024)} KiB/s vs median ${Math.round(median / 1024)} KiB/s, ${left} bytes left)`)
      c.stop('replaced')
      return segment
    }
    return undefined
  }

  private replaceStragglers(now: number): void {
    for (let i = 0; i < 4; i++) {
      const segment = this.takeOverStraggler(now, false)
      if (!segment) return
      this.spawn(segment)
    }
  }

  private debug(message: string): void {
    this.events.debug?.(`${((performance.now() - this.started) / 1000).toFixed(2)}s ${message}`)
  }

  private checkDone(): void {
    if (this.stopping || this.running > 0) return
    if (this.segments.done) {
      this.settle.resolve()
      return
    }
    if (this.sources.alive.length === 0) this.fail(new MtuneError('remote', 'no source left to download from', ExitCode.remote))
  }

  /** A wait that ends early, at once, when the transfer stops. */
  private pause(ms: number): Promise<void> {
    return sleep(ms, undefined, {signal: this.halt.signal}).catch(() => {})
  }

  private fail(error: unknown): void {
    if (this.stopping) return
    this.stopping = true
    this.halt.abort()
    for (const c of this.connections) c.stop('stopped')
    this.settle?.reject(error)
  }

  private async finish(): Promise<PullResult> {
    this.stopping = true
    const part = this.part!
    const size = this.journal.writtenRanges.total
    if (this.size !== undefined && size !== this.size) throw new Error(`internal: ${size} of ${this.size} bytes written`)
    // A short remainder can be done before the check is: nothing is put in place unchecked.
    const differs = await this.keptCheck
    if (differs) throw new FileChanged(differs)
    // The flush makes the renamed file survive a power loss; it runs while the hash finishes.
    const [, digest] = await Promise.all([
      part.datasync().then(() => this.debug('flushed')),
      this.hasher!.finish(size).then((d) => (this.debug('hashed'), d)),
    ])
    this.debug('flushed and hashed')
    if (this.expected && digest !== this.expected) {
      await part.close()
      this.part = undefined
      await this.journal.remove()
      await rm(this.dest.partPath, {force: true})
      throw new MtuneError(
        'digest-mismatch',
        `sha256 mismatch for ${this.dest.path}: expected ${this.expected}, got ${digest}; the file was removed`,
        ExitCode.integrity,
      )
    }
    try {
      await this.options.verify?.(this.dest.partPath, digest)
    } catch (error) {
      await part.close()
      this.part = undefined
      await this.journal.remove()
      await rm(this.dest.partPath, {force: true})
      throw error
    }
    await part.close()
    this.part = undefined
    await rename(this.dest.partPath, this.dest.path)
    // The rename itself must survive a power loss: a finished file is never lost.
    await fsyncDirectory(dirname(this.dest.path))
    await this.journal.remove()
    const seconds = (performance.now() - this.started) / 1000
    const fetchedNow = this.received.total
    this.emitProgress(performance.now())
    for (const s of this.sources.sources) {
      if (!s.primary) this.mirrorReport.push({url: redact(s.url), used: s.bytes > 0, bytes: s.bytes, dropped: s.droppedWhy})
    }
    return {
      url: redact(this.probed.file.url),
      path: this.dest.path,
      size,
      sha256: digest,
      verified: Boolean(this.expected),
      alreadyComplete: false,
      seconds,
      averageRate: seconds > 0 ? (size - this.resumedBytes) / seconds : 0,
      connections: this.peak,
      retries: this.retries,
      bytesFetched: fetchedNow,
      resumedBytes: this.resumedBytes,
      mirrors: this.mirrorReport,
    }
  }

  /** Whatever happened: connections stopped, what is on disk recorded, files closed. */
  private async shutdown(): Promise<void> {
    this.stopping = true
    this.halt.abort()
    this.ramp.close()
    this.checking.abort()
    for (const c of this.connections) c.stop('stopped')
    for (let i = 0; this.running > 0 && i < 100; i++) await sleep(20)
    await this.opening
    // The fetch threads' handles on the part file: closed before it is.
    await this.fetcher.close()
    this.hasher?.close()
    if (this.part) {
      const part = this.part
      await this.journal.checkpoint(() => part.datasync()).catch(() => {})
      await part.close().catch(() => {})
    }
    await this.journal.close()
  }
}

function diskFull(error: unknown, dest: Destination, onDisk: number, size?: number): MtuneError {
  const code = (error as {code?: string}).code
  const kept = size ? ` (${formatBytes(onDisk)} of ${formatBytes(size)} are kept)` : ''
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new MtuneError('disk-full', `disk full while writing ${dest.partPath}${kept}: free some space and run the same command again to resume`, ExitCode.localDisk, {cause: error})
  }
  return new MtuneError('disk-error', `cannot write ${dest.partPath}: ${errorMessage(error)}${kept}`, ExitCode.localDisk, {cause: error})
}

/** A connection's rate over the last two seconds, or since its first byte if younger. */
function recentRate(c: Connection, now: number): number {
  const age = now - (c.firstByteAt ?? now)
  return age < 2_000 ? (c.meter.total * 1000) / Math.max(1, age) : c.meter.rate(now, 2_000)
}
