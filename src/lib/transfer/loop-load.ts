import {performance, type EventLoopUtilization} from 'node:perf_hooks'

/**
 * How busy this process's event loop has been lately (0 to 1). When it is nearly always busy,
 * mtune itself is the bottleneck (a fast local mirror, a 100 Gbit link): more connections then
 * only add work, and a gain measured meanwhile is noise. Sampled by the monitor tick.
 */
export class LoopLoad {
  private samples: Array<{t: number; elu: EventLoopUtilization}> = []

  sample(now: number): void {
    this.samples.push({t: now, elu: performance.eventLoopUtilization()})
    while (this.samples.length > 2 && this.samples[1].t <= now - 10_000) this.samples.shift()
  }

  /** Utilization over about the last `windowMs`; 0 before two samples. */
  over(now: number, windowMs: number): number {
    const last = this.samples.at(-1)
    let from = this.samples[0]
    for (const s of this.samples) {
      if (s.t <= now - windowMs) from = s
      else break
    }
    if (!last || !from || from === last) return 0
    return performance.eventLoopUtilization(last.elu, from.elu).utilization
  }
}
