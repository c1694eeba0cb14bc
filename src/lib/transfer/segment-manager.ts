import type {ByteRange} from './range-set.js'

/** A range being fetched by one connection; `end` can shrink when another connection steals. */
export interface Segment {
  readonly id: number
  readonly start: number
  /** Next byte this segment's connection will write. */
  pos: number
  end: number
  /** Bytes being written right now from `pos` on: not to be given to another connection. */
  inflight: number
}

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

  /** @param missing ranges not yet on disk; @param minSplit never split below twice this. */
  constructor(missing: ByteRange[], private readonly minSplit: number) {
    this.reset(missing)
  }

  reset(missing: ByteRange[]): void {
    this.pending = missing.filter((r) => r.end > r.start).map((r) => ({...r}))
    this.active.clear()
  }

  /**
   * Cut the pending pieces so that `connections` connections can start at once; ranges already
   * on disk stay untouched.
   */
  spread(connections: number): void {
    const total = this.pending.reduce((sum, r) => sum + r.end - r.start, 0)
    const target = Math.max(this.minSplit, Math.ceil(total / Math.max(1, connections)))
    const pieces: ByteRange[] = []
    for (const r of this.pending) {
      for (let start = r.start; start < r.end; start += target) {
        const end = Math.min(r.end, start + target)
        // Merge a small tail into the previous piece rather than leave a runt.
        if (end - start < this.minSplit && pieces.length > 0 && pieces[pieces.length - 1].end === start) {
          pieces[pieces.length - 1].end = end
        } else pieces.push({start, end})
      }
    }
    this.pending = pieces
  }

  /** The next range for an idle connection: a pending piece, else half of the largest active one. */
  acquire(): Segment | undefined {
    const piece = this.pending.shift()
    if (piece) return this.open(piece.start, piece.end)
    return this.steal()
  }

  private steal(): Segment | undefined {
    let victim: Segment | undefined
    for (const s of this.active.values()) {
      if (!victim || remaining(s) > remaining(victim)) victim = s
    }
    if (!victim || remaining(victim) < 2 * this.minSplit) return undefined
    const from = victim.pos + victim.inflight
    const mid = from + Math.ceil((victim.end - from) / 2)
    const end = victim.end
    victim.end = mid
    return this.open(mid, end)
  }

  /**
   * Give a straggler's remaining range to a fresh connection: the old segment ends where it is.
   * Returns undefined when nothing worth moving is left.
   */
  takeOver(segment: Segment): Segment | undefined {
    if (!this.active.has(segment.id) || remaining(segment) <= 0) return undefined
    const from = segment.pos + segment.inflight
    const end = segment.end
    segment.end = from
    return this.open(from, end)
  }

  private open(start: number, end: number): Segment {
    const segment: Segment = {id: this.nextId++, start, pos: start, end, inflight: 0}
    this.active.set(segment.id, segment)
    return segment
  }

  /** Record bytes written by a segment's connection; returns how many of them were wanted. */
  advance(segment: Segment, bytes: number): number {
    const wanted = Math.max(0, Math.min(bytes, segment.end - segment.pos))
    segment.pos += wanted
    return wanted
  }

  /** The connection stopped (done or failed): what it did not fetch goes back to pending. */
  release(segment: Segment): void {
    if (!this.active.delete(segment.id)) return
    if (segment.pos < segment.end) {
      this.pending.push({start: segment.pos, end: segment.end})
      this.pending.sort((a, b) => a.start - b.start)
    }
  }

  get activeSegments(): Segment[] {
    return [...this.active.values()]
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
