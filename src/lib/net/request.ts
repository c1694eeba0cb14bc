import {request, type Dispatcher} from 'undici'
import {parseContentRange, rangeHeader, type ContentRange} from './http-range.js'
import {TransferError, classifyNetworkError} from './retry-policy.js'
import {nextHop, withUserinfo, withoutCredentials, withoutUserinfo} from './credentials.js'

export const USER_AGENT = 'mtune/0.1 (+https://github.com/mtune)'

export type Headers = Record<string, string>

export interface Response {
  status: number
  headers: Record<string, string | undefined>
  body: Dispatcher.ResponseData['body']
  /** The URL that answered, after redirects. */
  url: string
  /** The headers of the first redirect, where there was one: the origin's own answer (a hub's, before its CDN). */
  redirectedBy?: Record<string, string | undefined>
}

const REDIRECTS = new Set([301, 302, 303, 307, 308])
const MAX_REDIRECTS = 10

/**
 * A GET (or HEAD) that follows redirects under mtune's policy (credentials.ts): credentials
 * never follow a redirect to another origin, and https never drops to http. Every request that
 * may be redirected goes through here; ranged requests to a final URL do not redirect.
 *
 * Why not undici's redirect interceptor: it does strip credentials across origins, but it neither
 * refuses https -> http nor lets the caller see each hop's Location, and the pull needs the final
 * URL (to send its ranged requests straight to the CDN) and the signed link's expiry in it.
 */
export async function get(
  dispatcher: Dispatcher,
  url: string,
  headers: Headers,
  signal?: AbortSignal,
  options: {method?: 'GET' | 'HEAD'} = {},
): Promise<Response> {
  let current = new URL(url)
  let sent = {...headers}
  let redirectedBy: Response['redirectedBy']
  for (let hop = 0; ; hop++) {
    let res: Dispatcher.ResponseData
    try {
      res = await request(withoutUserinfo(current), {method: options.method ?? 'GET', headers: {'user-agent': USER_AGENT, ...withUserinfo(current, sent)}, signal, dispatcher})
    } catch (error) {
      if (signal?.aborted) throw error
      throw classifyNetworkError(error)
    }
    const flat = flattenHeaders(res.headers)
    const location = flat.location
    if (!REDIRECTS.has(res.statusCode) || !location) {
      return {status: res.statusCode, headers: flat, body: res.body, url: current.href, ...(redirectedBy ? {redirectedBy} : {})}
    }
    redirectedBy ??= flat
    await res.body.dump().catch(() => {})
    if (hop >= MAX_REDIRECTS) throw new TransferError('fatal', `too many redirects (more than ${MAX_REDIRECTS}) from ${redact(url)}`)
    const next = nextHop(current, location)
    if (current.protocol === 'https:' && next.protocol !== 'https:') {
      throw new TransferError('fatal', `refusing redirect from https to ${next.protocol.replace(':', '')} (${redact(next)})`)
    }
    if (next.origin !== current.origin) sent = withoutCredentials(sent)
    current = next
  }
}

/**
 * The bytes [start, end) of a file, for a sample to compare (mirror and resume checks). The body
 * is read only when the answer is exactly that range: anything else (a 200 may be the whole
 * file) is left unread.
 */
export async function getRange(
  dispatcher: Dispatcher,
  url: string,
  headers: Headers,
  start: number,
  end: number,
  signal?: AbortSignal,
): Promise<{res: Response; range?: ContentRange; body?: Buffer}> {
  const res = await get(dispatcher, url, {...headers, range: rangeHeader(start, end), 'accept-encoding': 'identity'}, signal)
  const range = parseContentRange(res.headers['content-range'])
  if (res.status !== 206 || range?.start !== start || range.end !== end - 1) {
    await res.body.dump().catch(() => {})
    return {res, range}
  }
  return {res, range, body: Buffer.from(await res.body.arrayBuffer())}
}

export function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {}
  for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value
  return out
}

/** A URL fit for messages: no user info, no query (signed URLs carry secrets there). */
export function redact(url: URL | string): string {
  const u = new URL(String(url))
  u.username = ''
  u.password = ''
  const query = u.search ? '?…' : ''
  u.search = ''
  return u.href + query
}

/**
 * When a signed URL stops working, from its query: `Expires=<epoch seconds>` (CloudFront,
 * Hugging Face) or `X-Amz-Date` + `X-Amz-Expires` (S3 SigV4). Undefined when unsigned.
 */
export function signedUrlExpiry(url: string): number | undefined {
  const q = new URL(url).searchParams
  const expires = q.get('Expires') ?? q.get('expires')
  if (expires && /^\d+$/.test(expires)) return Number(expires) * 1000
  const date = q.get('X-Amz-Date')
  const seconds = q.get('X-Amz-Expires')
  const m = date && /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date)
  if (m && seconds && /^\d+$/.test(seconds)) {
    return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])) + Number(seconds) * 1000
  }
  return undefined
}
