import type {Dispatcher} from 'undici'
import {fromReadable, streamRequest, type ChunkStream, type StreamedResponse} from '../net/chunk-stream.js'
import {parseContentRange, rangeHeader, sameVersion} from '../net/http-range.js'
import {USER_AGENT, type Response} from '../net/request.js'
import {withUserinfo} from '../net/credentials.js'
import {TransferError, classifyNetworkError, classifyStatus, describeStatus, parseRetryAfter} from '../net/retry-policy.js'
import type {Journal} from './journal.js'
import {Meter} from './meter.js'
import type {PartFile} from './part-file.js'
import type {Segment, SegmentManager} from './segment-manager.js'
import {validatorOf, type Source} from './source-pool.js'
import type {TokenBucket} from './token-bucket.js'

/**
 * Coalesce network reads into fewer positional writes; small, because what is buffered here
 * when the process is killed is fetched again.
 */
const FLUSH_BYTES = 128 * 1024

export interface ConnectionContext {
  dispatcher: Dispatcher
  /** Undefined while the size is unknown (single stream). */
  size?: number
  part: PartFile
  journal: Journal
  segments: SegmentManager
  limiter?: TokenBucket
  /** How much one request should ask for. */
  requestBytes(): number
  /** Bytes that reached the part file. */
  onWritten(bytes: number): void
  /** Bytes that came off the network, wanted or not. */
  onReceived(bytes: number): void
  /** This connection's first byte is here; called before its bytes are counted. */
  onFirstByte?(connection: Connection): void
}

export type StopReason = 'replaced' | 'stopped'

/** One HTTP request fetching one segment from one source. */
export class Connection {
  readonly meter = new Meter(5_000)
  readonly abort = new AbortController()
  readonly startedAt = performance.now()
  firstByteAt?: number
  stopReason?: StopReason
  /** Where the last request went: a signed link may be renewed while it runs. */
  target?: string

  /**
   * @param followsServed the slot's previous request was served to its end: this one most
   *   likely goes over the same keep-alive connection, which the server has already let in.
   */
  constructor(readonly segment: Segment, readonly source: Source, readonly followsServed = false) {}

  stop(reason: StopReason): void {
    this.stopReason ??= reason
    this.abort.abort(new Error(reason))
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
    while (seg.pos < seg.end && !this.stopReason) {
      const requestEnd = first ? (first.end ?? seg.end) : Math.min(seg.end, seg.pos + Math.max(1, ctx.requestBytes()))
      seg.requestEnd = requestEnd
      const body = first ? fromReadable(first.response.body) : await this.open(ctx, requestEnd)
      first = undefined
      await this.stream(ctx, body, requestEnd)
    }
  }

  private async stream(ctx: ConnectionContext, body: ChunkStream, requestEnd: number): Promise<void> {
    const seg = this.segment
    const from = seg.pos
    let chunks: Buffer[] = []
    let buffered = 0

    const flush = async () => {
      const writable = Math.min(buffered, seg.end - seg.pos)
      if (writable > 0) {
        seg.inflight = writable
        try {
          await ctx.part.write(chunks, writable, seg.pos)
        } finally {
          seg.inflight = 0
        }
        ctx.journal.recordWritten(seg.pos, seg.pos + writable)
        ctx.segments.advance(seg, writable)
        this.source.bytes += writable
        this.source.failures = 0
        ctx.onWritten(writable)
      }
      chunks = []
      buffered = 0
      // Written (or not wanted): their slabs can take the next bytes.
      body.recycle()
    }

    const wanted = () => Math.min(seg.end, requestEnd)
    try {
      for await (const batch of body) {
        let bytes = 0
        for (const chunk of batch) bytes += chunk.length
        if (this.firstByteAt === undefined) {
          this.firstByteAt = performance.now()
          ctx.onFirstByte?.(this)
        }
        this.meter.add(bytes)
        ctx.onReceived(bytes)
        if (ctx.limiter) await ctx.limiter.take(bytes, this.abort.signal)
        for (const chunk of batch) chunks.push(chunk)
        buffered += bytes
        // A body longer than the range asked for (a chunked 206 that overruns its Content-Range):
        // what lies within the range is kept, nothing past it is written, and the answer is refused.
        const over = seg.pos + buffered - requestEnd
        if (over > 0) {
          buffered -= over
          await flush()
          throw new TransferError('bad-response', `the server sent more bytes than the range it answered (${over} past byte ${requestEnd}): refused`)
        }
        if (buffered >= FLUSH_BYTES || seg.pos + buffered >= wanted()) await flush()
        if (seg.pos >= wanted()) break
      }
      await flush()
    } catch (error) {
      // Keep what arrived intact before reporting the failure: it will not be fetched again.
      await flush().catch(() => {})
      if (this.stopReason) return
      throw isDiskError(error) ? error : classifyNetworkError(error)
    } finally {
      // A request cut short (the segment shrank) cannot be reused; a finished one can.
      if (seg.pos < requestEnd) body.destroy()
      // Every write above was awaited: nothing reads from the body's slabs any more.
      body.release()
    }
    if (this.stopReason) return
    if (ctx.size === undefined && seg.end === Number.MAX_SAFE_INTEGER) {
      // Unknown size: the stream's end is the file's end.
      seg.end = seg.pos
      return
    }
    if (seg.pos < wanted()) {
      throw new TransferError('transient', `connection closed early: got ${seg.pos - from} of ${wanted() - from} bytes`)
    }
  }

  private async open(ctx: ConnectionContext, requestedEnd: number): Promise<ChunkStream> {
    const seg = this.segment
    const validator = validatorOf(this.source)
    const headers: Record<string, string> = {
      'user-agent': USER_AGENT,
      ...this.source.headers,
      'accept-encoding': 'identity',
      range: rangeHeader(seg.pos, requestedEnd),
    }
    if (validator) headers['if-range'] = validator
    let res: StreamedResponse
    try {
      this.target = this.source.target
      const url = new URL(this.target)
      res = await streamRequest(ctx.dispatcher, {origin: url.origin, path: url.pathname + url.search, method: 'GET', headers: withUserinfo(url, headers)}, this.abort.signal)
    } catch (error) {
      if (this.stopReason) throw new StoppedError()
      throw classifyNetworkError(error)
    }
    const h = res.headers
    const reject = async (error: TransferError) => {
      await res.body.dump().catch(() => {})
      return error
    }
    if (res.statusCode === 206) {
      const range = parseContentRange(h['content-range'])
      if (!range || range.start !== seg.pos || range.end !== requestedEnd - 1 || (range.total !== undefined && range.total !== ctx.size)) {
        throw await reject(
          new TransferError('bad-response', `Content-Range ${h['content-range'] ?? '(none)'} does not match the range asked for (bytes ${seg.pos}-${requestedEnd - 1}/${ctx.size})`),
        )
      }
      if (this.source.etag && h.etag && h.etag !== this.source.etag) {
        throw await reject(new TransferError('changed', `its ETag changed (${this.source.etag} -> ${h.etag})`))
      }
      return res.body
    }
    if (res.statusCode === 200) {
      if (!validator) throw await reject(new TransferError('bad-response', 'the server ignored the Range header (200 instead of 206)'))
      const same = sameVersion(this.source, {etag: h.etag, lastModified: h['last-modified']})
      throw await reject(
        same
          ? new TransferError('transient', 'the server ignored the Range header this time (200 with the same version of the file)', {status: 200})
          : new TransferError('changed', 'the server sent the whole file to an If-Range request, so the file has changed'),
      )
    }
    if (res.statusCode === 416) throw await reject(new TransferError('changed', 'the requested range no longer exists (416)', {status: 416}))
    throw await reject(
      new TransferError(classifyStatus(res.statusCode), `${describeStatus(res.statusCode)} from ${new URL(this.source.target).host}`, {
        status: res.statusCode,
        retryAfterMs: parseRetryAfter(h['retry-after']),
      }),
    )
  }
}

export class StoppedError extends Error {
  constructor() {
    super('stopped')
  }
}

export function isDiskError(error: unknown): boolean {
  const code = (error as {code?: string})?.code
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'EIO' || code === 'EROFS' || code === 'EFBIG'
}
