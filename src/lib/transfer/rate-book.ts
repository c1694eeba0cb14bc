import {firstByteTime, requestBytes, typicalRate, type ConnectionView} from './piece-policy.js'

/** A finished connection's rate counts this long towards the typical rate. */
const REMEMBER_MS = 10_000

/**
 * What the connections say about the path: the typical rate of one connection (the running
 * ones and those that finished lately; near the end only stragglers are left running), and
 * from it how much one request asks for (piece-policy.ts). Its one piece of state, the rates of
 * connections finished lately, has it as its only writer.
 */
export class RateBook {
  private finished: Array<{at: number; rate: number}> = []

  constructor(
    private readonly minSplit: number,
    private readonly chunkSize?: number,
  ) {}

  /**
   * A connection ended. Returns its rate when it ran long enough to tell one (for its source's
   * standing); one that was stopped (replaced, the pull ended) does not count as typical.
   */
  ended(c: ConnectionView, now: number): number | undefined {
    if (c.firstByteAt === undefined) return undefined
    const seconds = (now - c.firstByteAt) / 1000
    if (seconds < 0.3) return undefined
    const rate = c.meter.total / seconds
    if (!c.stopReason) this.finished.push({at: now, rate})
    return rate
  }

  typical(running: Iterable<ConnectionView>, now: number): number | undefined {
    this.finished = this.finished.filter((r) => now - r.at < REMEMBER_MS)
    return typicalRate(
      running,
      this.finished.map((r) => r.rate),
      now,
    )
  }

  /** How much one request should ask for now: from the typical rate and how long the running connections waited for their first byte. */
  requestBytes(running: Iterable<ConnectionView>, now: number): number {
    const list = [...running]
    return requestBytes(this.minSplit, this.chunkSize, this.typical(list, now), firstByteTime(list))
  }
}
