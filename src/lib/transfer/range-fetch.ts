import type {Dispatcher} from 'undici'
import type {ChunkStream, StreamedResponse} from '../net/chunk-stream.js'
import {requestBody} from '../net/dispatcher.js'
import {parseContentRange, rangeHeader, sameVersion} from '../net/http-range.js'
import {USER_AGENT} from '../net/request.js'
import {withUserinfo} from '../net/credentials.js'
import {TransferError, classifyNetworkError, classifyStatus, describeAnswer, serverWait} from '../net/retry-policy.js'
import {forwardingProxy} from '../net/proxy-env.js'
import type {PartFile} from './part-file.js'
import type {TokenBucket} from './token-bucket.js'

/**
 * How one request fetches one range and writes it: the data plane, free of any engine state so
 * that it runs the same on the main thread (inline) and in a fetch thread (fetch-thread.ts).
 * It reports what happened through `RangeIo` and never decides anything beyond this request.
 */

/** What one request asks for: serialisable, since it may be posted to a fetch thread. */
export interface RangeRequest {
  /** Where the request goes (a signed link, a mirror). */
  target: string
  /** The source's headers (credentials only for the origin they were given for). */
  headers: Record<string, string>
  /** If-Range validator, when the source has one. */
  validator?: string
  etag?: string
  lastModified?: string
  /** The file's size; undefined for a stream of unknown length. */
  size?: number
  /** First byte asked for; the segment's position. */
  from: number
  /** End (exclusive) of the range asked for. */
  requestEnd: number
}

export interface RangeIo {
  part: PartFile
  limiter?: TokenBucket
  /** Where the segment ends now: it shrinks when another connection takes over its tail. */
  end(): number
  firstByte(): void
  /** Bytes that came off the network, wanted or not. */
  received(bytes: number): void
  /** Bytes about to be written from `pos`: not to be handed to another connection meanwhile. */
  writing(bytes: number): void
  /** Bytes [start, start + bytes) reached the part file. */
  written(start: number, bytes: number): void
}

/**
 * Coalesce network reads into fewer positional writes. What is buffered here when the process
 * is killed is fetched again, so a buffer holds at most about FLUSH_MS of this connection's
 * bytes (a slow connection flushes at FLUSH_MIN, a fast one at up to FLUSH_MAX): on a fat pipe
 * that means 3x fewer writes, journal lines and thread-pool turns than a fixed 128 KiB. The
 * ceiling is memory: 512 KiB took the 2 GiB pull's peak RSS to 148 MB of its 150 (32
 * connections' buffers), 256 KiB cost the fat pipe 5-10% of its wall time.
 */
const FLUSH_MIN = 128 * 1024
const FLUSH_MAX = 384 * 1024
const FLUSH_MS = 50

/** Fetch [from, requestEnd) of `req.target`; returns the position reached (stopped: where it stopped). */
export async function fetchRange(dispatcher: Dispatcher, req: RangeRequest, io: RangeIo, signal: AbortSignal): Promise<number> {
  const {body, end} = await open(dispatcher, req, signal)
  return streamBody(body, end < req.requestEnd ? {...req, requestEnd: end} : req, io, signal)
}

/**
 * Write the body of a 206 for [from, requestEnd) as it arrives, up to where the segment ends
 * now. Returns the position reached. Fails when the body ends early (unless the size is
 * unknown: then its end is the file's) or runs past its range.
 */
export async function streamBody(body: ChunkStream, req: RangeRequest, io: RangeIo, signal: AbortSignal): Promise<number> {
  const {from, requestEnd} = req
  let pos = from
  let chunks: Buffer[] = []
  let buffered = 0
  let firstAt: number | undefined
  let flushAt = FLUSH_MIN
  let received = 0

  const flush = async () => {
    const writable = Math.min(buffered, io.end() - pos)
    if (writable > 0) {
      io.writing(writable)
      try {
        await io.part.write(chunks, writable, pos)
      } finally {
        io.writing(0)
      }
      const at = pos
      pos += writable
      io.written(at, writable)
    }
    chunks = []
    buffered = 0
    // Written (or not wanted): their slabs can take the next bytes.
    body.recycle()
  }

  const wanted = () => Math.min(io.end(), requestEnd)
  try {
    for await (const batch of body) {
      let bytes = 0
      for (const chunk of batch) bytes += chunk.length
      const now = performance.now()
      if (firstAt === undefined) {
        firstAt = now
        io.firstByte()
      }
      io.received(bytes)
      if (io.limiter) await io.limiter.take(bytes, signal)
      for (const chunk of batch) chunks.push(chunk)
      buffered += bytes
      received += bytes
      // A body longer than the range asked for (a chunked 206 that overruns its Content-Range):
      // what lies within the range is kept, nothing past it is written, and the answer is refused.
      const over = pos + buffered - requestEnd
      if (over > 0) {
        buffered -= over
        await flush()
        throw new TransferError('bad-response', `the server sent more bytes than the range it answered (${over} past byte ${requestEnd}): refused`)
      }
      if (buffered >= flushAt || pos + buffered >= wanted()) {
        // FLUSH_MS of this connection's rate so far, within [FLUSH_MIN, FLUSH_MAX].
        const rate = received / Math.max(1, now - firstAt)
        flushAt = Math.max(FLUSH_MIN, Math.min(FLUSH_MAX, Math.round(rate * FLUSH_MS)))
        await flush()
      }
      if (pos >= wanted()) break
    }
    await flush()
  } catch (error) {
    // Keep what arrived intact before reporting the failure: it will not be fetched again.
    await flush().catch(() => {})
    if (signal.aborted) return pos
    throw isDiskError(error) ? error : classifyNetworkError(error)
  } finally {
    // A request cut short (the segment shrank) cannot be reused; a finished one can.
    if (pos < requestEnd) body.destroy()
    // Every write above was awaited: nothing reads from the body's slabs any more.
    body.release()
  }
  if (signal.aborted || req.size === undefined) return pos
  if (pos < wanted()) {
    throw new TransferError('transient', `connection closed early: got ${pos - from} of ${wanted() - from} bytes`)
  }
  return pos
}

/**
 * Send the request and check its answer: a 206 for the range, of the same version, and where it
 * ends (exclusive). A 206 for only the start of the range is taken as it is (the connection asks
 * for the rest next): some servers cap what one answer holds, and RFC 9110 lets them; curl and
 * wget write what such an answer holds, where aria2c gives up on it. One that starts elsewhere,
 * or runs past the range, is refused.
 */
async function open(dispatcher: Dispatcher, req: RangeRequest, signal: AbortSignal): Promise<{body: ChunkStream; end: number}> {
  const {from, requestEnd} = req
  const headers: Record<string, string> = {
    'user-agent': USER_AGENT,
    ...req.headers,
    'accept-encoding': 'identity',
    range: rangeHeader(from, requestEnd),
  }
  if (req.validator) headers['if-range'] = req.validator
  let res: StreamedResponse
  try {
    const url = new URL(req.target)
    res = await requestBody(dispatcher, {origin: url.origin, path: url.pathname + url.search, headers: withUserinfo(url, headers)}, signal)
  } catch (error) {
    if (signal.aborted) throw new StoppedError()
    throw classifyNetworkError(error)
  }
  const h = res.headers
  const reject = async (error: TransferError) => {
    await res.body.dump().catch(() => {})
    return error
  }
  if (res.statusCode === 206) {
    const range = parseContentRange(h['content-range'])
    if (!range || range.start !== from || range.end > requestEnd - 1 || (range.total !== undefined && range.total !== req.size)) {
      throw await reject(
        new TransferError('bad-response', `Content-Range ${h['content-range'] ?? '(none)'} does not match the range asked for (bytes ${from}-${requestEnd - 1}/${req.size})`),
      )
    }
    if (req.etag && h.etag && h.etag !== req.etag) {
      throw await reject(new TransferError('changed', `its ETag changed (${req.etag} -> ${h.etag})`, {validators: {etag: h.etag, lastModified: h['last-modified']}}))
    }
    return {body: res.body, end: range.end + 1}
  }
  if (res.statusCode === 200) {
    if (!req.validator) throw await reject(new TransferError('bad-response', 'the server ignored the Range header (200 instead of 206)'))
    const same = sameVersion(req, {etag: h.etag, lastModified: h['last-modified']})
    throw await reject(
      same
        ? new TransferError('transient', 'the server ignored the Range header this time (200 with the same version of the file)', {status: 200})
        : new TransferError('changed', 'the server sent the whole file to an If-Range request, so the file has changed', {validators: {etag: h.etag, lastModified: h['last-modified']}}),
    )
  }
  if (res.statusCode === 416) throw await reject(new TransferError('changed', 'the requested range no longer exists (416)', {status: 416}))
  throw await reject(
    new TransferError(classifyStatus(res.statusCode), describeAnswer(res.statusCode, req.target, forwardingProxy(req.target)), {
      status: res.statusCode,
      retryAfterMs: serverWait(h),
    }),
  )
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
