import type {ByteRange} from './range-set.js'

/**
 * A range being fetched by one connection; `end` can shrink when another connection steals.
 * Read-only outside the SegmentManager, its one writer: a connection reports what it asks for
 * and writes through the manager's methods.
 */
export interface Segment {
  readonly id: number
  readonly start: number
  /** Next byte this segment's connection will write. */
  readonly pos: number
  readonly end: number
  /** Bytes being written right now from `pos` on: not to be given to another connection. */
  readonly inflight: number
  /** End of the HTTP request in flight; cutting the segment before it means aborting it. */
  readonly requestEnd: number
}
type Writable = {-readonly [K in keyof Segment]: Segment[K]}
/** The segment as its writer sees it. */
const own = (segment: Segment) => segment as Writable

/**
 * How pieces are cut right now: decided by the engine from its connections' rates when a piece
 * is handed out (piece-policy.ts), so that the manager holds no policy of its own.
 */
export interface PiecePlan {
  /** How much of the file one connection takes at a time. */
  pieceSize: number
  /**
   * The smallest piece handed out: the minimum split, except near the end, where it is lowered
   * so that the last pieces, each paying a first-byte delay of its own, end together instead of
   * leaving the link idle behind the one that got the last big piece.
   */
  smallestPiece: number
  /** Whether cutting into a victim's request in flight (which aborts it, and wastes what is in flight) saves time. */
  worthCutting(victim: Segment): boolean
}

/** What a connection reports of its segment (the manager's methods for it). */
export type SegmentLedger = Pick<SegmentManager, 'requesting' | 'writing' | 'streamEnded'>

/**
 * Decides what to download next, aria2-style: the pieces still missing are handed out, and once
 * none is left a connection that runs dry takes over the second half of the largest range still
 * being fetched (work stealing), so every connection stays busy to the very end. It does no I/O;
 * how a segment is fetched is the connection's business.
 */
export class SegmentManager {
  private pending: ByteRange[] = []
  private readonly active = new Map<number, Segment>()
  private nextId = 1

  /**
   * @param missing ranges not yet on disk; @param minSplit never split below twice this.
   * @param onCut a segment's end moved back: its connection, if it runs elsewhere, must be told.
   */
  constructor(
    missing: ByteRange[],
    private readonly minSplit: number,
    private readonly onCut: (segment: Segment) => void = () => {},
  ) {
    this.reset(missing)
  }

  reset(missing: ByteRange[]): void {
    this.pending = missing.filter((r) => r.end > r.start).map((r) => ({...r}))
    this.active.clear()
  }

  /**
   * The next range for an idle connection: the next piece in order, else half of the largest
   * active one. Pieces are handed out in file order, so every connection works near the front:
   * the contiguous prefix (and its hash) keeps up with the download, and a resumed file has few
   * holes.
   */
  acquire(plan: PiecePlan): Segment | undefined {
    const first = this.pending[0]
    if (!first) return this.steal(plan)
    const start = first.start
    const end = this.pieceEnd(start, first.end, plan)
    if (end === first.end) this.pending.shift()
    else first.start = end
    return this.open(start, end)
  }

  /**
   * The piece that starts at `start` and ends at or before `end`, when the first pending range
   * starts there: the probe already asked for it.
   */
  acquireAt(start: number, end = Number.MAX_SAFE_INTEGER): Segment | undefined {
    const first = this.pending[0]
    if (!first || first.start !== start) return undefined
    const stop = Math.min(end, first.end)
    if (stop === first.end) this.pending.shift()
    else first.start = stop
    return this.open(start, stop)
  }

  private steal(plan: PiecePlan): Segment | undefined {
    const candidates = [...this.active.values()].filter((s) => remaining(s) >= 2 * this.minSplit).sort((a, b) => remaining(b) - remaining(a))
    for (const victim of candidates) {
      const from = victim.pos + victim.inflight
      let mid = from + Math.ceil((victim.end - from) / 2)
      // Prefer to take only what the victim has not asked for yet, so that its request ends
      // normally and its keep-alive connection lives on; but not when that would leave the
      // victim with most of the work, which would make it the straggler at the end. Near the
      // end an even split matters more than the connection.
      const upTo = from + Math.ceil(((victim.end - from) * 3) / 4)
      const plenty = victim.end - from >= 16 * this.minSplit
      if (plenty && victim.requestEnd > mid && victim.requestEnd <= upTo && victim.end - victim.requestEnd >= this.minSplit) mid = victim.requestEnd
      if (mid < victim.requestEnd && !plan.worthCutting(victim)) {
        if (victim.end - victim.requestEnd < this.minSplit) continue
        mid = victim.requestEnd
      }
      const end = victim.end
      own(victim).end = mid
      this.onCut(victim)
      return this.open(mid, end)
    }
    return undefined
  }

  /**
   * Give a straggler's remaining range to a fresh connection: the old segment ends where it is.
   * The fresh one takes a piece; the rest goes back to the pending pieces, which come first
   * since they are nearer the front, so that several connections fill the hole the straggler
   * left (and the hash of the prefix, waiting on it, moves on). Returns undefined when nothing
   * worth moving is left.
   */
  takeOver(segment: Segment, plan: PiecePlan): Segment | undefined {
    if (!this.active.has(segment.id) || remaining(segment) <= 0) return undefined
    const from = segment.pos + segment.inflight
    const end = segment.end
    own(segment).end = from
    this.onCut(segment)
    const stop = this.pieceEnd(from, end, plan)
    if (stop < end) this.putBack({start: stop, end})
    return this.open(from, stop)
  }

  /** Where a piece starting at `start` ends within a range ending at `end`; no sliver is left. */
  private pieceEnd(start: number, end: number, plan: PiecePlan): number {
    const stop = Math.min(end, start + Math.max(plan.smallestPiece, plan.pieceSize))
    return end - stop < plan.smallestPiece ? end : stop
  }

  private putBack(range: ByteRange): void {
    this.pending.push(range)
    this.pending.sort((a, b) => a.start - b.start)
  }

  private open(start: number, end: number): Segment {
    const segment: Writable = {id: this.nextId++, start, pos: start, end, inflight: 0, requestEnd: start}
    this.active.set(segment.id, segment)
    return segment
  }

  /** Record bytes written by a segment's connection; returns how many of them were wanted. */
  advance(segment: Segment, bytes: number): number {
    const wanted = Math.max(0, Math.min(bytes, segment.end - segment.pos))
    own(segment).pos += wanted
    return wanted
  }

  /** Its connection asks for [pos, requestEnd) now. */
  requesting(segment: Segment, requestEnd: number): void {
    own(segment).requestEnd = requestEnd
  }

  /** Its connection is writing this many bytes from `pos` (0: the write is done). */
  writing(segment: Segment, bytes: number): void {
    own(segment).inflight = bytes
  }

  /** A stream of unknown length ended: where it ended is the file's end. */
  streamEnded(segment: Segment): void {
    own(segment).end = segment.pos
  }

  /** The connection stopped (done or failed): what it did not fetch goes back to pending. */
  release(segment: Segment): void {
    if (!this.active.delete(segment.id)) return
    if (segment.pos < segment.end) this.putBack({start: segment.pos, end: segment.end})
  }

  /** True when every byte has been handed out and no connection is still working. */
  get done(): boolean {
    return this.pending.length === 0 && this.active.size === 0
  }

  get hasPending(): boolean {
    return this.pending.length > 0
  }

  /** Bytes neither on disk nor being fetched by an active connection already. */
  get pendingBytes(): number {
    return this.pending.reduce((sum, r) => sum + r.end - r.start, 0)
  }

  /** The largest range a newly added connection could get right now. */
  get largestAvailable(): number {
    let best = this.pending.reduce((max, r) => Math.max(max, r.end - r.start), 0)
    for (const s of this.active.values()) if (remaining(s) >= 2 * this.minSplit) best = Math.max(best, Math.floor(remaining(s) / 2))
    return best
  }
}

/** Bytes of a segment not yet written nor being written. */
export const remaining = (s: Segment): number => Math.max(0, s.end - s.pos - s.inflight)
