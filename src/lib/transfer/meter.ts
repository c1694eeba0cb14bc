/** Bytes over time, sampled by the monitor tick: rates over a trailing window. */
export class Meter {
  total = 0
  private samples: Array<{t: number; total: number}> = []

  constructor(private readonly keepMs = 10_000) {}

  add(bytes: number): void {
    this.total += bytes
  }

  sample(now: number): void {
    this.samples.push({t: now, total: this.total})
    const horizon = now - this.keepMs
    while (this.samples.length > 2 && this.samples[1].t <= horizon) this.samples.shift()
  }

  /** Bytes per second over the last `windowMs` (or as much of it as has been sampled). */
  rate(now: number, windowMs: number): number {
    if (this.samples.length === 0) return 0
    let from = this.samples[0]
    for (const s of this.samples) {
      if (s.t <= now - windowMs) from = s
      else break
    }
    const elapsed = now - from.t
    return elapsed > 0 ? ((this.total - from.total) * 1000) / elapsed : 0
  }

}
