import {fromReadable} from '../net/chunk-stream.js'
import type {Response} from '../net/request.js'
import type {Fetcher} from './fetch-threads.js'
import {EndCell} from './fetch-wire.js'
import {Meter} from './meter.js'
import type {PartFile} from './part-file.js'
import {streamBody, type RangeIo, type RangeRequest} from './range-fetch.js'
import {remaining, type Segment, type SegmentLedger} from './segment-manager.js'
import {validatorOf, type Source} from './source-pool.js'
import type {TokenBucket} from './token-bucket.js'

export interface ConnectionContext {
  /** Where requests run: this thread or a fetch thread (fetch-threads.ts). */
  fetcher: Fetcher
  /** Undefined while the size is unknown (single stream). */
  size?: number
  /** Where what a connection asks for and writes is recorded: the segments' one writer. */
  segments: SegmentLedger
  /** The part file, for the probe's body, which is read on this thread. */
  part: PartFile
  limiter?: TokenBucket
  /** How much one request should ask for. */
  requestBytes(): number
  /** Bytes [start, start + bytes) of this connection's segment reached the part file. */
  onWritten(connection: Connection, start: number, bytes: number): void
  /** Bytes that came off the network, wanted or not. */
  onReceived(bytes: number): void
  /** This connection's first byte is here; called before its bytes are counted. */
  onFirstByte?(connection: Connection): void
}

export type StopReason = 'replaced' | 'stopped'

/**
 * One connection slot's work on one segment from one source, as the engine sees it: its rate,
 * its first byte, how to stop it. The requests themselves run in range-fetch.ts, here or in a
 * fetch thread; what they write is reported to the engine, which alone moves the segment and
 * the journal on.
 */
export class Connection {
  readonly meter = new Meter(5_000)
  readonly abort = new AbortController()
  readonly startedAt = performance.now()
  firstByteAt?: number
  stopReason?: StopReason
  /** Where the last request went: a signed link may be renewed while it runs. */
  target?: string
  /** The segment's end as a fetch thread sees it. */
  private readonly end?: EndCell

  /**
   * @param followsServed the slot's previous request was served to its end: this one most
   *   likely goes over the same keep-alive connection, which the server has already let in.
   */
  constructor(
    readonly segment: Segment,
    readonly source: Source,
    readonly followsServed = false,
    remote = false,
    /** The connection slot it runs in: its requests keep to one fetch thread. */
    private readonly lane = 0,
  ) {
    if (remote) this.end = new EndCell()
  }

  /** Bytes of its segment not yet written nor being written. */
  get left(): number {
    return remaining(this.segment)
  }

  /** Bytes of its current request still to come. */
  get requestLeft(): number {
    return this.segment.requestEnd - this.segment.pos
  }

  stop(reason: StopReason): void {
    this.stopReason ??= reason
    this.abort.abort(new Error(reason))
  }

  /** The segment's end moved (another connection took over its tail): tell a fetch thread. */
  cut(): void {
    this.end?.set(this.segment.end)
  }

  /**
   * Fetch the segment with one or more requests of at most `requestBytes` over the same
   * keep-alive connection, writing as data arrives, until its end (which may shrink while we
   * run, when another connection steals part of it). `adopted` is the probe's response, whose
   * body starts at byte 0.
   */
  async run(ctx: ConnectionContext, adopted?: {response: Response; end?: number}): Promise<void> {
    const seg = this.segment
    let first = adopted
    const io = this.io(ctx)
    while (seg.pos < seg.end && !this.stopReason) {
      const requestEnd = first ? (first.end ?? seg.end) : Math.min(seg.end, seg.pos + Math.max(1, ctx.requestBytes()))
      ctx.segments.requesting(seg, requestEnd)
      this.target = this.source.target
      const req: RangeRequest = {
        target: this.source.target,
        headers: this.source.headers,
        validator: validatorOf(this.source),
        etag: this.source.etag,
        lastModified: this.source.lastModified,
        size: ctx.size,
        from: seg.pos,
        requestEnd,
      }
      if (first) await streamBody(fromReadable(first.response.body), req, io, this.abort.signal)
      else await ctx.fetcher.fetch(req, io, this.abort.signal, this.end, this.lane)
      first = undefined
      if (this.stopReason) return
      // Unknown size: the stream's end is the file's end.
      if (ctx.size === undefined) ctx.segments.streamEnded(seg)
    }
  }

  private io(ctx: ConnectionContext): RangeIo {
    const seg = this.segment
    return {
      part: ctx.part,
      limiter: ctx.limiter,
      end: () => seg.end,
      firstByte: () => {
        if (this.firstByteAt !== undefined) return
        this.firstByteAt = performance.now()
        ctx.onFirstByte?.(this)
      },
      received: (bytes) => {
        this.meter.add(bytes)
        ctx.onReceived(bytes)
      },
      writing: (bytes) => ctx.segments.writing(seg, bytes),
      written: (start, bytes) => ctx.onWritten(this, start, bytes),
    }
  }
}
