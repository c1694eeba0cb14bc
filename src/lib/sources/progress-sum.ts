import {Meter} from '../transfer/meter.js'
import type {Progress, PullEvents} from '../transfer/pull-types.js'
import type {PlannedFile} from './plan.js'

/** The rate is over this trailing window, as a single pull's (transfer.ts). */
const RATE_WINDOW_MS = 3_000

/**
 * One progress line for the whole plan: the sum over its files. The rate is the plan's own, the
 * bytes all its files wrote over the last seconds, not the sum of each file's rate: a dataset's
 * small files each finish before their first tick, so the sum of their rates was 0 B/s (no eta)
 * for the whole pull. Connections are those of the files under way, one (its first request)
 * for a file that has not said yet (one that waits on another mtune says none).
 */
export class ProgressSum {
  private readonly latest = new Map<PlannedFile, Progress>()
  private readonly files: Set<PlannedFile>
  private readonly started = performance.now()
  private readonly underWay = new Set<PlannedFile>()
  /** Each file's bytes written by its current attempt, as last said. */
  private readonly fetchedBy = new Map<PlannedFile, number>()
  private readonly fetched = new Meter()
  private timer?: NodeJS.Timeout

  constructor(
    files: PlannedFile[],
    private readonly events: PullEvents,
  ) {
    this.files = new Set(files)
    this.fetched.sample(this.started)
    if (events.progress) this.timer = setInterval(() => this.emit(), 200)
  }

  begin(file: PlannedFile): void {
    this.underWay.add(file)
  }

  /**
   * The file is in place (`size` bytes), `written` of them by this pull (none when another mtune
   * this one waited on pulled it). A small file ends before its first tick: its bytes count here.
   */
  end(file: PlannedFile, size: number, written: number): void {
    this.underWay.delete(file)
    this.fetched.add(Math.max(0, written - (this.fetchedBy.get(file) ?? 0)))
    this.fetchedBy.delete(file)
    const p = this.latest.get(file)
    if (!p || p.done < size) this.latest.set(file, {...(p ?? {rate: 0, elapsedMs: 0}), size, done: size, connections: 0})
  }

  update(file: PlannedFile, p: Progress): void {
    this.latest.set(file, p)
    const now = p.fetched ?? 0
    const before = this.fetchedBy.get(file) ?? 0
    // Less than before: a new attempt at the file (it changed on the server), counting from zero.
    this.fetched.add(now >= before ? now - before : now)
    this.fetchedBy.set(file, now)
  }

  /** A file that failed while the others go on (pull -i): out of the sum, so that it can end at 100%. */
  drop(file: PlannedFile): void {
    this.files.delete(file)
    this.latest.delete(file)
    this.underWay.delete(file)
  }

  /**
   * The total is known once every file's size is: a list's files say theirs only when their
   * servers answer, and until then the line shows bytes without a total, as a single pull does.
   */
  private emit(): void {
    const now = performance.now()
    let done = 0
    let total: number | undefined = 0
    for (const f of this.files) {
      const p = this.latest.get(f)
      const size = f.size ?? p?.size
      total = size === undefined || total === undefined ? undefined : total + size
      if (p) done += p.done
    }
    let connections = 0
    for (const f of this.underWay) connections += this.latest.get(f)?.connections ?? 1
    this.fetched.sample(now)
    const rate = this.fetched.rate(now, RATE_WINDOW_MS)
    this.events.progress?.({
      size: total,
      done,
      rate,
      etaSeconds: total !== undefined && rate > 0 ? (total - done) / rate : undefined,
      connections,
      elapsedMs: now - this.started,
    })
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    if (this.events.progress) this.emit()
  }
}
