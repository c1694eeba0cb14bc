import {redact, signedUrlExpiry} from '../net/request.js'
import {formatDuration, formatRate} from '../units.js'
import {signedByUser, type Source} from './source-pool.js'

/** A rate measured for less than this may be the ramp's, not the pull's. */
const SETTLED_MS = 5_000

/**
 * A presigned link the user gave (S3's X-Amz-Expires, a CDN's Expires=) that will expire before
 * the pull can finish at its rate: said once, while there is still time to get a fresh one. mtune
 * cannot renew such a link (a hub's redirect it renews itself: link-renewal.ts).
 */
export class LinkDeadline {
  private said = false

  private constructor(
    private readonly url: string,
    private readonly expiresAt: number,
  ) {}

  /** Undefined for a link without a stated expiry, or one mtune follows from a hub's redirect. */
  static of(source: Source): LinkDeadline | undefined {
    const expiresAt = signedByUser(source) ? signedUrlExpiry(source.url) : undefined
    return expiresAt === undefined ? undefined : new LinkDeadline(source.url, expiresAt)
  }

  /** The warning, once, when the bytes left at `rate` outlast the link. */
  check(nowEpochMs: number, elapsedMs: number, left: number | undefined, rate: number): string | undefined {
    if (this.said || left === undefined || left <= 0 || rate <= 0 || elapsedMs < SETTLED_MS) return undefined
    const needMs = (left / rate) * 1000
    const remainingMs = this.expiresAt - nowEpochMs
    if (nowEpochMs + needMs <= this.expiresAt) return undefined
    this.said = true
    const at = new Date(this.expiresAt).toISOString().slice(11, 19)
    return (
      `${redact(this.url)} expires at ${at} UTC (in ${formatDuration(Math.max(0, remainingMs) / 1000)}), before this pull can finish ` +
      `(about ${formatDuration(needMs / 1000)} more at ${formatRate(rate)}): what is fetched by then is kept; pull a fresh link to the same place to go on`
    )
  }
}
