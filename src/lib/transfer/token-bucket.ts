import {setTimeout as sleep} from 'node:timers/promises'

/** --limit-rate: one bucket shared by every connection, so the cap is on the whole pull. */
export class TokenBucket {
  private tokens: number
  private last = performance.now()
  /** When a taker last began or ended a wait: the cap, not the path, was what held the pull back. */
  private waitedAt = -Infinity
  /** Takers inside a wait now. */
  private waiting = 0

  constructor(private readonly rate: number, private readonly burst = Math.max(rate / 4, 64 * 1024)) {
    this.tokens = this.burst
  }

  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = performance.now()
      if (this.refill(now) >= 0) {
        // Going negative lets a chunk larger than the burst through and makes the next wait longer.
        this.tokens -= bytes
        return
      }
      this.waitedAt = now
      this.waiting++
      try {
        await sleep(Math.ceil((-this.tokens * 1000) / this.rate), undefined, {signal})
      } finally {
        this.waiting--
        // The end counts too: a wait stretched by a stalled event loop ends long after it began.
        this.waitedAt = performance.now()
      }
    }
  }

  /**
   * Whether the cap, rather than the path, holds the pull back: a connection waits for it now or
   * did within the last `windowMs`, the pull drew the burst down faster than the cap refills it,
   * or it received at the cap (`throughput`, bytes/s). The last two see it before any wait: the
   * burst lets a pull run above the cap for its first moments, which looked like room to grow.
   */
  binding(now: number, windowMs: number, throughput = 0): boolean {
    if (this.waiting > 0 || now - this.waitedAt <= windowMs) return true
    return this.refill(now) < this.burst / 2 || throughput >= this.rate * 0.9
  }

  /** The tokens there are at `now`. */
  private refill(now: number): number {
    this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, now - this.last) * this.rate) / 1000)
    this.last = Math.max(this.last, now)
    return this.tokens
  }
}
