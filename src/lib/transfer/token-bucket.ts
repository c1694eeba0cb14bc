import {setTimeout as sleep} from 'node:timers/promises'

/** --limit-rate: one bucket shared by every connection, so the cap is on the whole pull. */
export class TokenBucket {
  private tokens: number
  private last = performance.now()
  /** When a taker last had to wait: the cap, not the path, was what held the pull back. */
  private waitedAt = -Infinity

  constructor(private readonly rate: number, private readonly burst = Math.max(rate / 4, 64 * 1024)) {
    this.tokens = this.burst
  }

  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = performance.now()
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000)
      this.last = now
      if (this.tokens >= 0) {
        // Going negative lets a chunk larger than the burst through and makes the next wait longer.
        this.tokens -= bytes
        return
      }
      this.waitedAt = now
      await sleep(Math.ceil((-this.tokens * 1000) / this.rate), undefined, {signal})
    }
  }

  /** Whether the cap held a connection back within the last `windowMs`. */
  binding(now: number, windowMs: number): boolean {
    return now - this.waitedAt <= windowMs
  }
}
