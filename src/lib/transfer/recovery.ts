import {ExitCode, MtuneError} from '../errors.js'
import {redact} from '../net/request.js'
import {TransferError, backoffDelay, cappedWait, classifyNetworkError} from '../net/retry-policy.js'
import {decideFailure, type FailureAction} from './failure-policy.js'
import type {LinkRenewal} from './link-renewal.js'
import {isDiskError} from './range-fetch.js'
import type {SourcePool, Source} from './source-pool.js'
import {FileChanged, StartOver, refusedError, runAgain} from './transfer-errors.js'

/** What recovery acts on and through. */
export interface RecoveryContext {
  sources: SourcePool
  links: LinkRenewal
  ramp: {
    readonly target: number
    /** A connection failed before its first byte, for a network reason: perhaps a limit per client. */
    refused(source: Source, now: number): void
    /** 429/503: fewer connections; returns the new target. */
    throttled(now: number, running: number): number
  }
  /** The server serves ranges: a broken request can be continued. */
  ranged: boolean
  maxRetries: number
  random: () => number
  /** Connection slots running now. */
  slots(): number
  warn(message: string): void
  /** End the pull with this error. */
  fail(error: unknown): void
  /** The error a failed disk ends the pull with. */
  diskError(cause: unknown): Error
}

/**
 * What the engine does when a request fails: failure-policy.ts decides from the facts, this
 * carries the decision out (end the pull, drop a source, renew a signed link, throttle, rest)
 * and keeps the counts that bound the retries. Its own state: the retries so far, the failures
 * since the last byte written, and the last throttling said.
 */
export class Recovery {
  private retryCount = 0
  private failuresSinceProgress = 0
  private throttleSaid?: {target: number; at: number}

  constructor(private readonly ctx: RecoveryContext) {}

  /** Requests that failed and were tried again (disk failures aside). */
  get retries(): number {
    return this.retryCount
  }

  /** Bytes reached the disk: the failures in a row are over. */
  progressed(): void {
    this.failuresSinceProgress = 0
  }

  /**
   * One request failed. Returns the delay before its slot tries again, 0 when the pull or the
   * source ended. `usedTarget`: the link the request used; `maybeRefused`: cut before its first
   * byte on a fresh socket.
   */
  async failed(error: unknown, source: Source, attempt: number, usedTarget?: string, maybeRefused = false): Promise<number> {
    const {ctx} = this
    const disk = isDiskError(error)
    const e = error instanceof TransferError ? error : classifyNetworkError(error)
    const now = performance.now()
    if (!disk) this.retryCount++
    // Maybe a limit on connections per client, which the ramp's next tick looks into.
    if (!disk && ctx.ranged && maybeRefused && e.kind === 'transient' && e.status === undefined) ctx.ramp.refused(source, now)
    if (!disk && e.kind === 'transient') ctx.sources.failed(source)
    const where = source.primary ? '' : ` (mirror ${redact(source.url)})`
    const decision = decideFailure({
      kind: e.kind,
      status: e.status,
      message: e.message,
      disk,
      ranged: ctx.ranged,
      primary: source.primary,
      others: ctx.sources.alive.length > 1,
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
    if (this.failuresSinceProgress > ctx.maxRetries + Math.max(ctx.ramp.target, ctx.slots())) {
      ctx.fail(
        new MtuneError(
          'retries',
          `giving up after ${this.failuresSinceProgress} failed attempts in a row with no progress; last error: ${e.message}${where}; ${runAgain(ctx.ranged)}`,
          ExitCode.remote,
          {cause: e},
        ),
      )
      return 0
    }
    return backoffDelay(attempt, ctx.random, undefined, e.retryAfterMs)
  }

  /** Carry out a decision; true when the request is to be tried again (after a backoff). */
  private async act(d: FailureAction, e: TransferError, source: Source, now: number, attempt: number, where: string): Promise<boolean> {
    const {ctx} = this
    switch (d.do) {
      case 'fail': {
        const errors = {
          disk: () => ctx.diskError(e.details.cause ?? e),
          'not-resumable': () => new StartOver(`the download broke (${e.message}) and the server cannot continue it`, false),
          changed: () => new FileChanged(e.message, e.details.validators),
          refused: () => refusedError(source, e),
        }
        ctx.fail(errors[d.why]())
        return false
      }
      case 'drop':
        this.drop(source, d.why)
        return false
      case 'renew':
        if (d.join && (await source.resolving)) return true
        if (d.renew && (await ctx.links.renew(source, `was refused (${e.status})`))) return true
        return this.act(d.otherwise, e, source, now, attempt, where)
      case 'throttle': {
        const target = ctx.ramp.throttled(now, ctx.slots())
        const wait = e.retryAfterMs === undefined ? backoffDelay(attempt, ctx.random) : cappedWait(e.retryAfterMs).ms
        ctx.sources.rest(source, now + wait)
        // A burst of refusals is one event: say it again only when something new is to be said.
        const said = this.throttleSaid
        if (!said || said.target !== target || now - said.at > 5_000) {
          this.throttleSaid = {target, at: now}
          const words = e.retryAfterMs === undefined ? `${(wait / 1000).toFixed(1)}s` : cappedWait(e.retryAfterMs).words
          ctx.warn(`${e.message}${where}: waiting ${words}, then ${target} connection(s)`)
        }
        return true
      }
      case 'rest':
        ctx.sources.rest(source, now + backoffDelay(source.failures, ctx.random))
        return true
      case 'retry':
        return true
    }
  }

  private drop(source: Source, why: string): void {
    if (!source.alive) return
    this.ctx.sources.drop(source, why)
    this.ctx.warn(`dropping ${source.primary ? 'source' : 'mirror'} ${redact(source.url)}: ${why}`)
    if (this.ctx.sources.alive.length === 0) {
      this.ctx.fail(new MtuneError('remote', `no source left to download from; last: ${why}`, ExitCode.remote))
    }
  }
}
