import type {Meter} from './meter.js'

/**
 * How big the pieces are, when cutting into a running request pays, what a healthy connection
 * achieves, and which connection is a straggler: pure decisions over what the engine measured.
 * The segment manager hands pieces out at the sizes decided here; the engine acts on the
 * rest (takes a straggler's range over, stops it).
 */

/** What the policy reads of a running connection. */
export interface ConnectionView {
  readonly startedAt: number
  readonly firstByteAt?: number
  readonly stopReason?: unknown
  readonly meter: Meter
  /** Bytes of its segment not yet written nor being written. */
  readonly left: number
  /** Bytes of its current request still to come. */
  readonly requestLeft: number
}

/** Pieces are sized to end together once less than this many minimum pieces per connection is pending. */
const FINAL_PHASE = 1.5

/** A connection's rate over the last two seconds, or since its first byte if younger. */
function recentRate(c: ConnectionView, now: number): number {
  const age = now - (c.firstByteAt ?? now)
  return age < 2_000 ? (c.meter.total * 1000) / Math.max(1, age) : c.meter.rate(now, 2_000)
}

/**
 * What a healthy connection achieves: the median over running connections and those that
 * finished lately. Near the end only stragglers are left running, so they alone cannot say.
 */
export function typicalRate(running: Iterable<ConnectionView>, finishedRates: number[], now: number): number | undefined {
  const rates = [...running]
    .filter((c) => c.firstByteAt !== undefined && now - c.firstByteAt >= 500 && !c.stopReason)
    .map((c) => recentRate(c, now))
    .concat(finishedRates)
    .sort((a, b) => a - b)
  if (rates.length < 3) return undefined
  return rates[Math.floor(rates.length / 2)]
}

/** A request lasts this many first-byte waits: the wait before its first byte costs under 2.5%. */
const FIRST_BYTES_PER_REQUEST = 40
/** Bounds of a request's length in seconds of a typical connection's transfer. */
const REQUEST_SECONDS = {min: 0.25, max: 3}

/**
 * How long a request should last, from how long requests wait for their first byte: long
 * enough that the wait is a small cost, and no longer. Unknown, or slow to answer (a CDN 80 ms
 * away and more): 3 s. A near server answering in a few ms: a quarter of a second. Long
 * requests are also long pieces (pieces are handed out at most a request long), and with 16 or
 * more connections each holding one, the contiguous prefix stands still until the oldest
 * piece is done: on a fat pipe, 64 MiB pieces left a gigabyte to hash after the last byte
 * arrived (half a second of a 2 GiB pull spent hashing alone).
 */
export function requestSeconds(firstByteMs: number | undefined): number {
  if (firstByteMs === undefined) return REQUEST_SECONDS.max
  return Math.min(REQUEST_SECONDS.max, Math.max(REQUEST_SECONDS.min, (FIRST_BYTES_PER_REQUEST * firstByteMs) / 1000))
}

/**
 * How long connections waited for their first byte: the upper median, so that one quick
 * answer (a probe) does not decide. Undefined while none has had one.
 */
export function firstByteTime(connections: Iterable<Pick<ConnectionView, 'startedAt' | 'firstByteAt'>>): number | undefined {
  const times = [...connections]
    .filter((c) => c.firstByteAt !== undefined)
    .map((c) => c.firstByteAt! - c.startedAt)
    .sort((a, b) => a - b)
  return times.length ? times[Math.floor(times.length / 2)] : undefined
}

/**
 * How much one request asks for: `requestSeconds` of a typical connection's transfer (4 MiB/s
 * while none is known), at least two minimum splits, at most 64 MiB (a connection rarely has
 * to abort one). A chunk size set by the user is used as it is.
 */
export function requestBytes(minSplit: number, chunkSize: number | undefined, typical: number | undefined, firstByteMs?: number): number {
  if (chunkSize) return Math.max(minSplit, chunkSize)
  return Math.round(Math.min(64 * 1024 * 1024, Math.max(2 * minSplit, (typical ?? 4 * 1024 * 1024) * requestSeconds(firstByteMs))))
}

/**
 * Cutting into a running request aborts it and wastes what is in flight; it pays only when
 * the victim still needs a while (several times a request's first-byte time) to finish.
 */
export function worthCutting(victim: ConnectionView | undefined, now: number): boolean {
  if (!victim || victim.firstByteAt === undefined) return false
  const rate = Math.max(1, victim.meter.rate(now, 1_000) || victim.meter.total / Math.max(0.001, (now - victim.firstByteAt) / 1000))
  const firstByte = (victim.firstByteAt - victim.startedAt) / 1000
  return victim.requestLeft / rate > Math.max(0.3, 4 * firstByte)
}

export interface PieceSizes {
  pieceSize: number
  smallestPiece: number
}

/**
 * Without ranges the file is one piece; with them, never so big that a connection idles.
 * Near the end (the last minimum-size piece or so for each connection) pieces get smaller.
 */
export function pieceSizes(o: {ranged: boolean; target: number; pending: number; minSplit: number; requestBytes: number; held: number[]}): PieceSizes {
  if (!o.ranged) return {pieceSize: Number.MAX_SAFE_INTEGER, smallestPiece: o.minSplit}
  const target = Math.max(1, o.target)
  const endgame = o.pending < target * o.minSplit
  const smallestPiece = endgame ? Math.max(64 * 1024, Math.floor(o.minSplit / 4)) : o.minSplit
  return {smallestPiece, pieceSize: Math.max(smallestPiece, Math.min(o.requestBytes, share(o.pending, target, o.minSplit, o.held)))}
}

/**
 * What one piece should be. Far from the end, a share of what is pending (so pieces shrink as
 * the end nears). Near it, the share that makes the asking connection end when the others do:
 * the pending bytes fill up the connections that have least left, like water, and one that
 * is still busy past that level gets none. Plain shares would count those busy connections
 * too, and leave pieces over that start, first byte and all, just as the others end.
 *
 * @param held what each running connection has left
 */
export function share(pending: number, target: number, minSplit: number, held: number[]): number {
  if (pending >= FINAL_PHASE * target * minSplit) return Math.ceil(pending / target)
  const levels = [...held]
  // The asking connection has nothing left; nor has a slot about to be filled.
  while (levels.length < target - 1) levels.push(0)
  levels.push(0)
  levels.sort((a, b) => a - b)
  let sum = pending
  for (let k = 0; k < levels.length; k++) {
    sum += levels[k]
    const level = sum / (k + 1)
    if (k + 1 === levels.length || level <= levels[k + 1]) return Math.ceil(level)
  }
  return Math.ceil(pending / target)
}

export type Straggling = {why: 'slow' | 'late'; rate: number}

/**
 * Whether a fresh connection would do this one's remaining range sooner. Far below its peers'
 * median for a while, or clearly below for two seconds: slow. At the very end (`endgame`, a
 * slot idle), one that would finish well after a fresh one (a first byte, then the rest at the
 * median rate): late.
 */
export function straggling(c: ConnectionView, median: number, now: number, endgame: boolean): Straggling | undefined {
  if (c.stopReason || c.firstByteAt === undefined || c.left < 64 * 1024) return undefined
  const age = now - c.firstByteAt
  const rate = recentRate(c, now)
  // "A while" scales with the time to first byte, which a connection still in TCP slow start
  // on a long path needs several of.
  const firstByteMs = c.firstByteAt - c.startedAt
  const judgeAfter = Math.min(1_000, Math.max(300, 4 * firstByteMs))
  if ((age >= judgeAfter && rate < median / 8) || (age >= 2_000 && rate < median / 4)) return {why: 'slow', rate}
  const fresh = Math.max(0.1, firstByteMs / 1000) + c.left / median
  if (endgame && age >= Math.max(150, 2 * firstByteMs) && c.left / Math.max(rate, 1) > 2 * fresh) return {why: 'late', rate}
  return undefined
}
