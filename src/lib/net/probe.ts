import type {Dispatcher} from 'undici'
import {dispositionFilename, parseContentRange, unsatisfiedLength} from './http-range.js'
import {TransferError, classifyStatus, describeAnswer, serverWait} from './retry-policy.js'
import {get, type Response} from './request.js'
import {headersFor} from './credentials.js'
import {forwardingProxy} from './proxy-env.js'

export interface RemoteFile {
  /** The URL as given. */
  url: string
  /** Where it lives after redirects; later ranged requests go straight there. */
  finalUrl: string
  size?: number
  etag?: string
  lastModified?: string
  /** The server honoured our Range request with a 206. */
  ranges: boolean
  filename?: string
  /** As the server labels it: text/html for a file is a login page or an error page, most likely. */
  contentType?: string
  /**
   * A Content-Encoding other than identity, though identity was asked for (a bucket object
   * stored with `Content-Encoding: gzip`, a server that compresses regardless): the bytes are
   * saved as sent, compressed, as curl and wget save them; the user is told.
   */
  contentEncoding?: string
  /**
   * The sha256 the server publishes for the file: the Hugging Face Hub's X-Linked-Etag on its
   * answer for an LFS file (the redirect to its CDN), as its mirrors and an mtune cache pass on.
   */
  publishedSha256?: string
}

/** The Content-Encoding a body has beyond identity, if any. */
const encodedAs = (value: string | undefined): string | undefined => {
  const codings = (value ?? '').split(',').map((c) => c.trim().toLowerCase()).filter((c) => c && c !== 'identity')
  return codings.length ? codings.join(', ') : undefined
}

/** X-Linked-Etag's value when it is a sha256 ("…" or W/"…" around 64 hex digits); a git sha1 is no digest of the file. */
export function linkedSha256(value: string | undefined): string | undefined {
  const hex = value?.trim().replace(/^W\//, '').replace(/^"|"$/g, '').toLowerCase()
  return hex && /^[0-9a-f]{64}$/.test(hex) ? hex : undefined
}

export interface Probe {
  file: RemoteFile
  /** The body of the probe request: the first connection keeps reading it. */
  response?: Response
  /** Where that body starts in the file, and where it ends (exclusive). */
  start: number
  end?: number
}

/**
 * Learns size, validators and range support from a first ranged GET, whose body is not
 * wasted: the caller continues reading it as the first segment. `start` is the first byte a
 * resumed download still needs. HEAD is only asked when the ranged answer gives no total size.
 */
export async function probe(
  dispatcher: Dispatcher,
  url: string,
  headers: Record<string, string>,
  signal?: AbortSignal,
  start = 0,
  length?: number,
): Promise<Probe> {
  // Bounded, so that a server pushing fast does not fill socket buffers with bytes the first
  // piece does not need.
  const range = length ? `bytes=${start}-${start + length - 1}` : `bytes=${start}-`
  const response = await get(dispatcher, url, {...headers, range, 'accept-encoding': 'identity'}, signal)
  const h = response.headers
  const published = linkedSha256((response.redirectedBy ?? h)['x-linked-etag'])
  const encoding = encodedAs(h['content-encoding'])
  const base = {
    url,
    finalUrl: response.url,
    etag: h.etag,
    lastModified: h['last-modified'],
    filename: dispositionFilename(h['content-disposition']),
    contentType: h['content-type'],
    ...(encoding ? {contentEncoding: encoding} : {}),
    ...(published ? {publishedSha256: published} : {}),
  }

  if (response.status === 206) {
    const got = parseContentRange(h['content-range'])
    if (!got || got.start !== start || (length !== undefined && got.end > start + length - 1)) {
      await response.body.dump().catch(() => {})
      throw new TransferError('bad-response', `the server answered a range request with a bad Content-Range (${h['content-range'] ?? 'none'})`)
    }
    const size = got.total ?? (await headSize(dispatcher, response.url, new URL(url).origin, headers, signal))
    return {file: {...base, size, ranges: size !== undefined}, response, start, end: got.end + 1}
  }
  if (response.status === 200) {
    const size = h['content-length'] && !h['content-encoding'] ? Number(h['content-length']) : undefined
    return {file: {...base, size, ranges: false}, response, start: 0, end: size}
  }
  if (response.status === 416) {
    await response.body.dump().catch(() => {})
    const size = unsatisfiedLength(h['content-range'])
    // An empty file, or a resumed one that is shorter now (the journal will notice).
    if (size === 0 || (size !== undefined && start > 0)) return {file: {...base, size, ranges: true}, start}
    if (start > 0) return probe(dispatcher, url, headers, signal, 0, length)
  } else {
    await response.body.dump().catch(() => {})
  }
  throw new TransferError(classifyStatus(response.status), describeAnswer(response.status, response.url, forwardingProxy(response.url)), {
    status: response.status,
    retryAfterMs: serverWait(h),
  })
}

/**
 * The size from a HEAD, when a 206 did not say. `url` is where the GET ended up, maybe another
 * origin than the one `headers` were granted to: they are sent only where `get` allows.
 */
async function headSize(dispatcher: Dispatcher, url: string, grantedOrigin: string, headers: Record<string, string>, signal?: AbortSignal): Promise<number | undefined> {
  try {
    const res = await get(dispatcher, url, headersFor(url, grantedOrigin, headers), signal, {method: 'HEAD'})
    await res.body.dump().catch(() => {})
    const length = res.headers['content-length']
    return res.status === 200 && length ? Number(length) : undefined
  } catch {
    return undefined
  }
}

/**
 * What a server says of a file from one byte of it, for a dry run: its size, name, range support
 * and published digest, the answer's body let go (a server that ignores the range sends no more
 * than the dump's limit before the connection is closed).
 */
export async function peekFile(dispatcher: Dispatcher, url: string, headers: Record<string, string>, signal?: AbortSignal): Promise<RemoteFile> {
  const probed = await probe(dispatcher, url, headers, signal, 0, 1)
  await probed.response?.body.dump().catch(() => {})
  return probed.file
}
