import {setTimeout as sleep} from 'node:timers/promises'
import {redact, type Response} from '../net/request.js'
import {onUsedSocket} from '../net/retry-policy.js'
import type {ConnectionBudget} from './connection-budget.js'
import {Connection, type ConnectionContext} from './connection.js'
import type {Fetcher} from './fetch-threads.js'
import type {LinkRenewal} from './link-renewal.js'
import {pieceSizes, straggling, worthCutting} from './piece-policy.js'
import type {Ramp} from './ramp.js'
import type {RateBook} from './rate-book.js'
import type {Recovery} from './recovery.js'
import type {PiecePlan, Segment, SegmentManager} from './segment-manager.js'
import type {Source, SourcePool} from './source-pool.js'

/** The probe's response, read on by the first connection. */
export type Adopted = {response: Response; end?: number}

/** What the slots work with and report to: the transfer's parts. */
export interface SlotsContext {
  segments: SegmentManager
  sources: SourcePool
  links: LinkRenewal
  ramp: Ramp<Source>
  recovery: Recovery
  rates: RateBook
  /** Where requests run: here, or in fetch threads. */
  fetcher: Fetcher
  /** The URL given: the probe's response came from it. */
  primary: Source
  ranged: boolean
  minSplit: number
  /** Connections shared with the other files of a multi-file pull. */
  budget?: ConnectionBudget
  /** Aborted when the transfer stops: no wait outlives it. */
  halt: AbortSignal
  /** No new work is to start (the transfer failed, or is finishing). */
  stopping(): boolean
  /** What connections write through; ready before the first slot starts. */
  io(): ConnectionContext
  fail(error: unknown): void
  /** A slot ended: the transfer may be done. */
  ended(): void
  debug(message: string): void
}

/**
 * The connection slots: how many run, what each fetches next and from which source, and the
 * stragglers replaced. A slot fetches piece after piece over its keep-alive connection until
 * nothing is left or the ramp wants fewer; a failed request is handed to Recovery, which says
 * how long the slot waits before trying again. The one writer of the running connections and
 * of the slot count.
 */
export class Slots {
  /** Requests in flight, one per connection; a slot between two requests has none. */
  readonly connections = new Set<Connection>()
  /** Slots started and not ended: a slot waiting out a backoff still counts. */
  private running = 0
  /** Slots started so far: each its own lane (fetch-threads.ts). */
  private lanes = 0
  private most = 0

  constructor(private readonly ctx: SlotsContext) {}

  get count(): number {
    return this.running
  }

  /** The most slots that ran at once. */
  get peak(): number {
    return this.most
  }

  /** Start slots up to the ramp's target while there is work for them. */
  fill(): void {
    const {ctx} = this
    while (!ctx.stopping() && this.running < ctx.ramp.target) {
      if (ctx.budget && !ctx.budget.tryAcquire(this.running === 0)) return
      const segment = this.acquire()
      if (!segment) {
        ctx.budget?.release()
        return
      }
      this.spawn(segment, undefined, true)
    }
  }

  /** `adopted`: the probe's response, whose body starts at the segment's start. */
  start(segment: Segment, adopted?: Adopted): void {
    this.spawn(segment, adopted)
  }

  /**
   * A connection far below its peers' median for a few seconds gets a fresh connection for
   * the rest of its range (up to 4 a tick).
   */
  replaceStragglers(now: number): void {
    for (let i = 0; i < 4; i++) {
      const segment = this.takeOverStraggler(now, false)
      if (!segment) return
      this.spawn(segment)
    }
  }

  stopAll(): void {
    for (const c of this.connections) c.stop('stopped')
  }

  /** A segment's end moved back: its connection, if it runs elsewhere, must be told. */
  cut(segment: Segment): void {
    for (const c of this.connections) if (c.segment === segment) c.cut()
  }

  /** `budgeted`: a connection from the shared budget was already taken for this slot. */
  private spawn(segment: Segment, adopted?: Adopted, budgeted = false): void {
    const {ctx} = this
    if (!budgeted && ctx.budget) ctx.budget.tryAcquire(true)
    this.running++
    this.most = Math.max(this.most, this.running)
    void this.slot(segment, adopted)
      .catch((error) => ctx.fail(error))
      .finally(() => {
        this.running--
        ctx.budget?.release()
        ctx.ended()
      })
  }

  /** The next piece, sized now; else a straggler's range, fetched afresh, may still end sooner. */
  private acquire(): Segment | undefined {
    return this.ctx.segments.acquire(this.plan()) ?? this.takeOverStraggler(performance.now(), true)
  }

  /** One connection slot: fetch segments until there is nothing left or too many slots run. */
  private async slot(initial: Segment, adopted?: Adopted): Promise<void> {
    const {ctx} = this
    const lane = this.lanes++
    let segment: Segment | undefined = initial
    let attempt = 0
    let served = false
    while (!ctx.stopping()) {
      segment ??= this.running > ctx.ramp.target ? undefined : this.acquire()
      if (!segment) return
      const source = adopted ? ctx.primary : await this.pickSource()
      if (!source) {
        ctx.segments.release(segment)
        return
      }
      const connection = new Connection(segment, source, served, ctx.fetcher.remote, lane)
      const before = segment.pos
      ctx.debug(`conn seg#${segment.id} ${segment.pos}-${segment.end} on ${source.primary ? 'primary' : redact(source.url)}`)
      let delay = 0
      this.connections.add(connection)
      try {
        await connection.run(ctx.io(), adopted)
        served = segment.pos > before
      } catch (error) {
        served = false
        if (!connection.stopReason && !ctx.stopping()) {
          // Cut before its first byte on a fresh socket: perhaps a server's limit per client.
          const refused = connection.firstByteAt === undefined && !onUsedSocket(error)
          delay = await ctx.recovery.failed(error, source, ++attempt, connection.target, refused)
        }
      } finally {
        ctx.debug(`end seg#${segment.id} at ${segment.pos}/${segment.end}${connection.firstByteAt === undefined ? '' : `, first byte after ${Math.round(connection.firstByteAt - connection.startedAt)} ms`}${connection.stopReason ? ` (${connection.stopReason})` : ''}`)
        adopted = undefined
        this.connections.delete(connection)
        const rate = ctx.rates.ended(connection, performance.now())
        if (rate !== undefined) ctx.sources.noteRate(source, rate)
        ctx.segments.release(segment)
      }
      if (segment.pos > before) attempt = 0
      segment = undefined
      if (delay > 0) await this.pause(delay)
    }
  }

  /** How pieces are cut now, from what the connections show (piece-policy.ts). */
  private plan(): PiecePlan {
    const {ctx} = this
    const now = performance.now()
    const running = [...this.connections]
    const sizes = pieceSizes({
      ranged: ctx.ranged,
      target: ctx.ramp.target,
      pending: ctx.segments.pendingBytes,
      minSplit: ctx.minSplit,
      requestBytes: ctx.rates.requestBytes(running, now),
      held: running.filter((c) => !c.stopReason).map((c) => c.left),
    })
    return {...sizes, worthCutting: (victim) => worthCutting(running.find((c) => c.segment === victim), now)}
  }

  private async pickSource(): Promise<Source | undefined> {
    const {ctx} = this
    for (;;) {
      if (ctx.stopping()) return undefined
      const now = performance.now()
      const source = ctx.sources.pick(now, this.connections)
      // A signed link about to expire is renewed before a new request is started with it.
      if (source && ctx.links.due(source)) {
        await ctx.links.beforeRequest(source)
        continue
      }
      if (source) return source
      const next = ctx.sources.nextAvailableAt()
      if (next === undefined) return undefined
      await this.pause(Math.max(50, next - now))
    }
  }

  /**
   * A straggler's range for a fresh connection (piece-policy.ts straggling). At the very end
   * (`endgame`), an idle slot may take over any connection that would finish much later than a
   * fresh one.
   */
  private takeOverStraggler(now: number, endgame: boolean): Segment | undefined {
    const {ctx} = this
    const median = ctx.rates.typical(this.connections, now)
    if (!median) return undefined
    for (const c of this.connections) {
      const straggler = straggling(c, median, now, endgame)
      if (!straggler) continue
      const left = c.left
      const segment = ctx.segments.takeOver(c.segment, this.plan())
      if (!segment) continue
      ctx.debug(`replacing seg#${c.segment.id} (${straggler.why}: ${Math.round(straggler.rate / 1024)} KiB/s vs median ${Math.round(median / 1024)} KiB/s, ${left} bytes left)`)
      c.stop('replaced')
      return segment
    }
    return undefined
  }

  /** A wait that ends early, at once, when the transfer stops. */
  private pause(ms: number): Promise<void> {
    return sleep(ms, undefined, {signal: this.ctx.halt}).catch(() => {})
  }
}
