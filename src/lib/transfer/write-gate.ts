/**
 * Whether a part file's next write goes straight from the thread that received the bytes (a
 * synchronous writev) or through libuv's thread pool.
 *
 * Into the page cache a write of a few hundred KiB takes about 0.1 ms, and handing it to the
 * pool costs more than that: a wake-up of a pool thread, its wait, and the callback back on the
 * loop, about 4,400 hand-offs per 2 GiB. Measured on a 2 GiB pull from nginx on loopback
 * (docs/BENCHMARKS.md), writing directly saved about 0.3 CPU s per GiB and 20-30 MB of peak
 * RSS. Writing directly only blocks the thread briefly while the kernel
 * copies; it blocks it for long where the kernel makes the writer sleep: dirty-page throttling
 * on a disk slower than the network, a network or FUSE filesystem waiting for its server. There
 * the pool's threads wait instead and the loop keeps reading the sockets, so writes go back to
 * the pool once the thread has slept too much, and try directly again after a while.
 */
export interface WriteGate {
  /** Whether to write the next bytes directly. */
  direct(): boolean
  /** A direct write took `ms`. */
  took(ms: number): void
}

/** A write longer than this slept in the kernel (page-cache copies take 0.1-1.5 ms; a few take up to 35 ms on a busy VM). */
export const SLEPT_MS = 2
/** Writes that slept this long within one WINDOW_MS send the writes to the pool. */
export const SLEEP_BUDGET_MS = 250
export const WINDOW_MS = 1000
/** How long writes stay in the pool: doubling while each try at writing directly sleeps too much again. */
export const POOL_MIN_MS = 1000
export const POOL_MAX_MS = 16_000

/** What a pull says, once, when its writes wait on the disk: the disk, not the network, sets its pace. */
export function saysSlowDiskOnce(info: ((message: string) => void) | undefined): (dir: string) => void {
  let said = false
  return (dir) => {
    if (said) return
    said = true
    info?.(`writes to ${dir} wait for its disk: slower than the network here, the disk sets the pace of this pull`)
  }
}

/** `pooled`: told each time writes go to the pool, and for how long (for --debug). */
export function writeGate(pooled?: (forMs: number, sleptMs: number) => void, now: () => number = () => performance.now()): WriteGate {
  let windowStart: number | undefined
  let slept = 0
  let poolUntil = -Infinity
  let poolMs = POOL_MIN_MS
  return {
    direct: () => now() >= poolUntil,
    took(ms) {
      const t = now()
      if (windowStart === undefined || t - windowStart >= WINDOW_MS) {
        // A whole window written directly without sleeping too much: the next fall-back is short again.
        if (windowStart !== undefined) poolMs = POOL_MIN_MS
        windowStart = t
        slept = 0
      }
      if (ms > SLEPT_MS) slept += ms
      if (slept > SLEEP_BUDGET_MS) {
        pooled?.(poolMs, slept)
        poolUntil = t + poolMs
        poolMs = Math.min(poolMs * 2, POOL_MAX_MS)
        windowStart = undefined
        slept = 0
      }
    },
  }
}
