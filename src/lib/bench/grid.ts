import {setMaxListeners} from 'node:events'
import {USER_AGENT} from '../net/request.js'
import {createDispatcher} from '../net/dispatcher.js'
import {headersFor, withUserinfo, withoutUserinfo} from '../net/credentials.js'
import {parseContentRange} from '../net/http-range.js'

export interface Cell {
  connections: number
  chunkSize: number
  bytes: number
  seconds: number
  throughputBps: number
  requests: number
  errors: number
  /** The mirror answered 429/503: the cell stopped rather than hammer it. */
  throttled: boolean
  /**
   * The mirror answered a range with only its start (a 206 for fewer bytes than asked: a
   * server that caps what one answer holds): the most it answered so. Absent when every
   * answer held the range asked.
   */
  answeredAtMost?: number
}

/** What a request cut off may still have had in flight: both ends' socket buffers and the wire. */
const IN_FLIGHT_MARGIN = 16 * 1024 * 1024

/** Bytes for the whole run, taken before each request so that the total can never be exceeded. */
export class ByteBudget {
  constructor(private left: number) {}

  take(want: number): number {
    const got = Math.max(0, Math.min(want, this.left))
    this.left -= got
    return got
  }

  /** A share handed out and not spent (a cell's), back for the cells after it. */
  give(bytes: number): void {
    this.left += Math.max(0, bytes)
  }

  get remaining(): number {
    return this.left
  }
}

/**
 * `connections` keep-alive connections, each asking for `chunkSize` ranges one after another
 * (at spread offsets), for at most `timeMs`: what a downloader with those settings would get.
 * Everything read is counted and dropped; nothing is written. Through the pull's dispatcher
 * (proxies included); `headers` were granted to `grantedOrigin` and go nowhere else.
 */
export async function runCell(
  url: string,
  size: number,
  connections: number,
  chunkSize: number,
  options: {timeMs: number; budget: ByteBudget; signal?: AbortSignal; headers?: Record<string, string>; grantedOrigin?: string},
): Promise<Cell> {
  const target = new URL(url)
  const granted = headersFor(target, options.grantedOrigin ?? target.origin, options.headers ?? {})
  const pool = createDispatcher({stallTimeoutMs: 15_000, connections})
  // A plain controller and timer: on Node 20, AbortSignal.any() over AbortSignal.timeout() can
  // lose the timeout to garbage collection, and the cell would never end.
  const controller = new AbortController()
  const stop = controller.signal
  // Every connection of the cell listens to it.
  setMaxListeners(0, stop)
  const timer = setTimeout(() => controller.abort(), Math.max(1, Math.round(options.timeMs)))
  const onAbort = () => controller.abort()
  options.signal?.addEventListener('abort', onAbort, {once: true})
  const cell: Cell = {connections, chunkSize, bytes: 0, seconds: 0, throughputBps: 0, requests: 0, errors: 0, throttled: false}
  const started = performance.now()
  let next = 0
  const worker = async () => {
    while (!stop.aborted && !cell.throttled) {
      const length = options.budget.take(Math.min(chunkSize, size))
      if (length === 0) return
      const start = next % Math.max(1, size - length + 1)
      next += chunkSize * 7 + 4096
      cell.requests++
      let got = 0
      let expected = length
      try {
        const res = await pool.request({
          origin: withoutUserinfo(target).origin,
          path: target.pathname + target.search,
          method: 'GET',
          headers: withUserinfo(target, {...granted, 'user-agent': USER_AGENT, range: `bytes=${start}-${start + length - 1}`, 'accept-encoding': 'identity'}),
          signal: stop,
        })
        if (res.statusCode === 429 || res.statusCode === 503) {
          cell.throttled = true
          await res.body.dump().catch(() => {})
          return
        }
        if (res.statusCode !== 206) {
          cell.errors++
          await res.body.dump().catch(() => {})
          continue
        }
        const range = parseContentRange(res.headers['content-range'] as string | undefined)
        const answered = range && range.start === start ? range.end - range.start + 1 : length
        if (answered < length) {
          // The rest of the range was never going to come: its bytes go back to the budget.
          cell.answeredAtMost = Math.max(cell.answeredAtMost ?? 0, answered)
          options.budget.give(length - answered)
          expected = answered
        }
        for await (const chunk of res.body) {
          got += (chunk as Buffer).length
          cell.bytes += (chunk as Buffer).length
        }
      } catch {
        if (!stop.aborted) cell.errors++
      } finally {
        // Cut off by the cell's end (a slow link, a large chunk): the rest of the range cannot
        // have been sent, except what may sit in socket buffers or on the wire, which a strict
        // --max-bytes counts as sent. The rest goes back, for the cells after this one.
        if (stop.aborted) options.budget.give(expected - got - IN_FLIGHT_MARGIN)
      }
    }
  }
  try {
    await Promise.all(Array.from({length: connections}, worker))
  } finally {
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', onAbort)
    cell.seconds = (performance.now() - started) / 1000
    cell.throughputBps = cell.seconds > 0 ? cell.bytes / cell.seconds : 0
    await pool.destroy().catch(() => {})
  }
  return cell
}
