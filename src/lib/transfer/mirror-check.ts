import type {Dispatcher} from 'undici'
import {headersFor} from '../net/credentials.js'
import {getRange} from '../net/request.js'
import {errorMessage} from '../errors.js'
import {newSource, type Source} from './source-pool.js'

const SAMPLE = 64 * 1024

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
      getRange(dispatcher, mirror, headersFor(mirror, trustedOrigin, headers), start, end, signal),
      getRange(dispatcher, primary.target, primary.headers, start, end, signal),
    ])
    if (theirs.res.status !== 206 || !theirs.range) return {rejected: `it does not serve byte ranges (HTTP ${theirs.res.status})`}
    if (theirs.range.total !== size) return {rejected: `it serves a file of ${theirs.range.total ?? 'unknown'} bytes, not ${size}`}
    if (!theirs.body) return {rejected: `it answers with other bytes than asked for (Content-Range ${theirs.res.headers['content-range']})`}
    if (ours.body && !theirs.body.equals(ours.body)) return {rejected: 'it serves different bytes'}
    const {etag, 'last-modified': lastModified} = theirs.res.headers
    const source = newSource(mirror, theirs.res.url, {etag, lastModified}, false, performance.now(), headersFor(theirs.res.url, trustedOrigin, headers))
    return {source}
  } catch (error) {
    return {rejected: errorMessage(error)}
  }
}
