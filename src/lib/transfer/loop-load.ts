import {performance} from 'node:perf_hooks'
import {Meter} from './meter.js'

/**
 * How busy this process's event loop has been lately (0 to 1). When it is nearly always busy,
 * mtune itself is the bottleneck (a fast local mirror, a 100 Gbit link): more connections then
 * only add work, and a gain measured meanwhile is noise. Sampled by the monitor tick; a Meter
 * of the loop's busy milliseconds, whose rate per second over a window is the utilization.
 */
export class LoopLoad {
  private readonly busy = new Meter(10_000)
  private active = performance.eventLoopUtilization().active

  sample(now: number): void {
    const active = performance.eventLoopUtilization().active
    this.busy.add(active - this.active)
    this.active = active
    this.busy.sample(now)
  }

  /** Utilization over about the last `windowMs`; 0 before two samples. */
  over(now: number, windowMs: number): number {
    return this.busy.rate(now, windowMs) / 1000
  }
}
