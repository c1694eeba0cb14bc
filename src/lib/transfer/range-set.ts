/** Half-open byte interval [start, end). */
export interface ByteRange {
  start: number
  end: number
}

/** A sorted set of disjoint, non-adjacent byte intervals: which bytes of a file are on disk. */
export class RangeSet {
  private ranges: ByteRange[] = []

  static from(ranges: Iterable<ByteRange>): RangeSet {
    const set = new RangeSet()
    for (const r of ranges) set.add(r.start, r.end)
    return set
  }

  add(start: number, end: number): void {
    if (end <= start) return
    const out: ByteRange[] = []
    let merged = {start, end}
    let placed = false
    for (const r of this.ranges) {
      if (r.end < merged.start) out.push(r)
      else if (r.start > merged.end) {
        if (!placed) {
          out.push(merged)
          placed = true
        }
        out.push(r)
      } else merged = {start: Math.min(r.start, merged.start), end: Math.max(r.end, merged.end)}
    }
    if (!placed) out.push(merged)
    this.ranges = out
  }

  /** Bytes covered. */
  get total(): number {
    let sum = 0
    for (const r of this.ranges) sum += r.end - r.start
    return sum
  }

  /** End of the run that starts at byte 0 (0 when byte 0 is missing). */
  get prefixEnd(): number {
    const first = this.ranges[0]
    return first && first.start === 0 ? first.end : 0
  }

  /** The gaps in [0, size). */
  missing(size: number): ByteRange[] {
    const gaps: ByteRange[] = []
    let cursor = 0
    for (const r of this.ranges) {
      if (r.start >= size) break
      if (r.start > cursor) gaps.push({start: cursor, end: r.start})
      cursor = Math.max(cursor, r.end)
    }
    if (cursor < size) gaps.push({start: cursor, end: size})
    return gaps
  }

  toArray(): ByteRange[] {
    return this.ranges.map((r) => ({...r}))
  }

  clone(): RangeSet {
    return RangeSet.from(this.ranges)
  }
}
