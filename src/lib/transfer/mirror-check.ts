import type {Dispatcher} from 'undici'
import {parseContentRange, rangeHeader} from '../net/http-range.js'
import {get, headersFor} from '../net/request.js'
import {errorMessage} from '../errors.js'
import {newSource, type Source} from './source-pool.js'

const SAMPLE = 64 * 1024

async function readRange(dispatcher: Dispatcher, url: string, headers: Record<string, string>, start: number, end: number, signal?: AbortSignal) {
  const res = await get(dispatcher, url, {...headers, range: rangeHeader(start, end), 'accept-encoding': 'identity'}, signal)
  const range = parseContentRange(res.headers['content-range'])
  const body = Buffer.from(await res.body.arrayBuffer())
  return {res, range, body}
}

/**
 * A mirror is used only if it serves the same file: the same size, range support, and the
 * same bytes in a sample from the middle of the file as the primary source.
 */
export async function checkMirror(
  dispatcher: Dispatcher,
  mirror: string,
  primary: Source,
  size: number,
  headers: Record<string, string>,
  trustedOrigin: string,
  signal?: AbortSignal,
): Promise<{source?: Source; rejected?: string}> {
  const start = Math.max(0, Math.floor(size / 2) - SAMPLE / 2)
  const end = Math.min(size, start + SAMPLE)
  try {
    const [theirs, ours] = await Promise.all([
      readRange(dispatcher, mirror, headersFor(mirror, trustedOrigin, headers), start, end, signal),
      readRange(dispatcher, primary.target, primary.headers, start, end, signal),
    ])
    if (theirs.res.status !== 206 || !theirs.range) return {rejected: `it does not serve byte ranges (HTTP ${theirs.res.status})`}
    if (theirs.range.total !== size) return {rejected: `it serves a file of ${theirs.range.total ?? 'unknown'} bytes, not ${size}`}
    if (ours.res.status === 206 && !theirs.body.equals(ours.body)) return {rejected: 'it serves different bytes'}
    const {etag, 'last-modified': lastModified} = theirs.res.headers
    const source = newSource(mirror, theirs.res.url, {etag, lastModified}, false, performance.now(), headersFor(theirs.res.url, trustedOrigin, headers))
    return {source}
  } catch (error) {
    return {rejected: errorMessage(error)}
  }
}
