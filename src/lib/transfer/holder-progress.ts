import {Journal} from './journal.js'
import {Meter} from './meter.js'
import type {Progress} from './pull-types.js'

/** Reading the holder's journal once a second is plenty for a progress line, and cheap (it is compacted at each checkpoint). */
const LOOK_EVERY_MS = 1_000
const RATE_WINDOW_MS = 5_000

/**
 * The progress of the pull this one waits on, from its journal. A rank waiting on the first for
 * a 140 GB model otherwise shows a line that stands still for many minutes, as if hung. `fetched`
 * is what the holder wrote since this one began waiting: the rate at which the file it waits
 * for arrives. From another host (a shared filesystem) the journal's checkpointed bytes are what
 * can be trusted, and they are what is shown.
 */
export class HolderProgress {
  private lastLook = Number.NEGATIVE_INFINITY
  private readonly started = performance.now()
  /** The holder's bytes when this one began watching, or last saw it start over. */
  private from?: number
  private readonly arrived = new Meter()

  constructor(
    private readonly journalPath: string,
    private readonly bootId: string | undefined,
    private readonly emit: (progress: Progress) => void,
  ) {}

  look(now = performance.now()): void {
    if (now - this.lastLook < LOOK_EVERY_MS) return
    this.lastLook = now
    let seen: ReturnType<typeof Journal.peek>
    try {
      seen = Journal.peek(this.journalPath, this.bootId)
    } catch {
      return
    }
    if (!seen) return
    // Fewer bytes than before: the holder started the file over; count from there.
    if (this.from === undefined || seen.kept < this.from + this.arrived.total) this.from = seen.kept - this.arrived.total
    this.arrived.add(seen.kept - this.from - this.arrived.total)
    this.arrived.sample(now)
    const rate = this.arrived.rate(now, RATE_WINDOW_MS)
    this.emit({
      size: seen.size,
      done: seen.kept,
      rate,
      etaSeconds: seen.size !== undefined && rate > 0 ? (seen.size - seen.kept) / rate : undefined,
      connections: 0,
      elapsedMs: now - this.started,
      fetched: this.arrived.total,
    })
  }
}
