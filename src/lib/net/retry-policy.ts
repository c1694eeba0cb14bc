import {proxyConfig, proxyEndpoint} from './proxy-env.js'
/**
 * What to do after a failed request. Transient failures are retried for as long as the
 * download as a whole makes progress; fatal ones stop at once; throttling also tells the
 * connection controller to back off.
 */
export type FailureKind =
  | 'transient' // reset, truncated body, timeout, 5xx: try again after a backoff
  | 'throttle' // 429/503: try again later, with fewer connections
  | 'fatal' // 404, 410, auth: no point in asking again
  | 'changed' // the file is not the one we started with
  | 'bad-response' // e.g. a Content-Range that does not match the range asked for

export class TransferError extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    /** validators: for 'changed', those of the answer that showed the change. */
    readonly details: {status?: number; retryAfterMs?: number; cause?: unknown; validators?: {etag?: string; lastModified?: string}} = {},
  ) {
    super(message, {cause: details.cause})
    this.name = 'TransferError'
  }

  get status(): number | undefined {
    return this.details.status
  }

  get retryAfterMs(): number | undefined {
    return this.details.retryAfterMs
  }
}

export function classifyStatus(status: number): FailureKind {
  if (status === 429 || status === 503) return 'throttle'
  if (status === 408 || status >= 500) return 'transient'
  return 'fatal'
}

/** What a status means, and what to do about it where there is something. */
const STATUS_WORDS: Record<number, [string, string?]> = {
  401: ['authentication required (401)', 'give a token (HF_TOKEN for the Hub, USER:TOKEN@ in the URL, or the host\'s login in ~/.netrc) or check the one given'],
  403: ['access denied (403)', 'check the token, or that the link has not expired'],
  404: ['not found (404)', 'check the URL'],
  410: ['gone (410)', 'the file was removed from the server'],
  416: ['range not satisfiable (416)', 'the file on the server is smaller than before'],
  429: ['rate limited (429)'],
  503: ['service unavailable (503)'],
}

/**
 * An HTTP status as the error line says it: what, from where, then the fix. `proxy` forwarded the
 * request (proxy-env.ts: forwardingProxy), and may have answered itself.
 */
export function describeAnswer(status: number, url: string, proxy?: string): string {
  const [what, fix] = STATUS_WORDS[status] ?? [`HTTP ${status}`]
  return `${what} from ${new URL(url).host}${proxy ? ` (forwarded by the proxy ${proxy}, which may have answered itself)` : ''}${fix ? `: ${fix}` : ''}`
}

/** Retry-After as a delay in ms: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  const date = Date.parse(trimmed)
  if (Number.isNaN(date)) return undefined
  return Math.max(0, date - now)
}

/**
 * Seconds to the reset of a RateLimit header, as a delay in ms: the IETF draft's
 * `"POLICY";r=REMAINING;t=SECONDS`, or its earlier `limit=N, remaining=0, reset=SECONDS`. The Hub
 * sends the first on its 429s, to /api/ and to /resolve/ (file downloads) alike, and often no
 * Retry-After: a dataset of thousands of files meets its per-5-minutes quota.
 */
export function rateLimitReset(header: string | undefined): number | undefined {
  const t = header ? /(?:^|[;,\s])(?:t|reset)=(\d+)/.exec(header) : null
  return t ? Number(t[1]) * 1000 : undefined
}

/**
 * How long a refusing server asked to be left alone, in ms: Retry-After, else a RateLimit
 * header's reset, else the earlier drafts' RateLimit-Reset (delta-seconds, as Retry-After's).
 * The one reading of them for every path (the hubs' APIs, the probe, each range request, bench):
 * a wait guessed shorter than the server's spends the retries on refusals.
 */
export function serverWait(headers: Record<string, string | string[] | undefined>, now = Date.now()): number | undefined {
  const one = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value)
  return parseRetryAfter(one(headers['retry-after']), now) ?? rateLimitReset(one(headers.ratelimit)) ?? parseRetryAfter(one(headers['ratelimit-reset']), now)
}

/**
 * The longest a server's Retry-After (or RateLimit reset) is obeyed in one go: a CDN asking for
 * an hour is asked again after this, rather than leaving a pull silent for an hour.
 */
export const MAX_SERVER_WAIT_MS = 5 * 60_000

/** A server-asked wait, capped, and the words that say so when the cap applied. */
export function cappedWait(askedMs: number): {ms: number; words: string} {
  const ms = Math.min(askedMs, MAX_SERVER_WAIT_MS)
  const s = (x: number) => (x < 10_000 ? `${(x / 1000).toFixed(1)}s` : `${Math.round(x / 1000)}s`)
  return {ms, words: ms < askedMs ? `${s(ms)} (the server asked for ${s(askedMs)}; mtune waits at most ${s(MAX_SERVER_WAIT_MS)} at a time, then asks again)` : s(ms)}
}

export interface BackoffOptions {
  baseMs: number
  capMs: number
}

export const defaultBackoff: BackoffOptions = {baseMs: 250, capMs: 30_000}

/**
 * Exponential backoff with "equal jitter": half the step is fixed, half random, so that many
 * connections failing together do not come back together. A server's Retry-After wins when longer.
 */
export function backoffDelay(attempt: number, random: () => number, options = defaultBackoff, retryAfterMs?: number): number {
  const step = Math.min(options.capMs, options.baseMs * 2 ** Math.max(0, attempt - 1))
  const delay = step / 2 + random() * (step / 2)
  return retryAfterMs === undefined ? delay : Math.max(delay, cappedWait(retryAfterMs).ms)
}

const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
])

/** The proxy closed its connection instead of answering CONNECT, or did not answer (proxy-tunnel.ts). */
export const TUNNEL_FAILED = 'MTUNE_TUNNEL_FAILED'

/** Network-level errors (no HTTP status) as a TransferError. */
export function classifyNetworkError(error: unknown): TransferError {
  if (error instanceof TransferError) return error
  const code = (error as {code?: string})?.code
  const message = (error as Error)?.message ?? String(error)
  // The proxy itself, not the server, cannot be reached: said as such, with the variables to check.
  const proxy = code === 'ENOTFOUND' || code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ETIMEDOUT' ? proxyAt(error) : undefined
  if (proxy) {
    const why = code === 'ENOTFOUND' ? 'its host is not found' : code === 'ECONNREFUSED' ? 'connection refused' : `${code}`
    return new TransferError(code === 'ENOTFOUND' ? 'fatal' : 'transient', `cannot reach the proxy ${proxy} (${why}): check HTTPS_PROXY/HTTP_PROXY/ALL_PROXY, or put this host in NO_PROXY`, {cause: error})
  }
  if (code === 'ENOTFOUND') return new TransferError('fatal', `host not found: ${message}`, {cause: error})
  if (code === TUNNEL_FAILED) {
    return new TransferError('transient', `${message}: check HTTPS_PROXY/HTTP_PROXY and NO_PROXY`, {cause: error})
  }
  // A tunnel's answer other than 200; for plain http forwarded by the proxy, its 407 (undici's words).
  const refusal = /^Proxy response \((\d{3})\)|^Proxy Authentication Required \((407)\)/.exec(message)
  if (refusal) return proxyRefusal(Number(refusal[1] ?? refusal[2]), error)
  if (code && /^ERR_TLS|CERT|SSL|^UNABLE_TO_|SIGNATURE/.test(code)) return new TransferError('fatal', tlsFailure(code, message), {cause: error})
  if (code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT') {
    return new TransferError('transient', 'stalled: no data within the stall timeout', {cause: error})
  }
  if (code === 'ECONNREFUSED') return new TransferError('transient', `connection refused (${message.replace(/^.*ECONNREFUSED\s*/, '')})`, {cause: error})
  if (code && TRANSIENT_CODES.has(code)) {
    return new TransferError('transient', message.includes(code) ? message : `${code}: ${message}`, {cause: error})
  }
  return new TransferError('transient', message, {cause: error})
}

/**
 * The proxy (HOST:PORT) a connection error is about, when its address is one of the proxies this
 * process is set to use: undici names only the address it could not reach, which for a proxy
 * down or mistyped read as the server's fault.
 */
function proxyAt(error: unknown): string | undefined {
  const e = error as {address?: string; hostname?: string; port?: number}
  const c = proxyConfig()
  for (const value of [c.httpsProxy, c.httpProxy, c.allProxy]) {
    if (!value) continue
    const {host, port, shown} = proxyEndpoint(value)
    if ((e.address === host || e.hostname === host) && (e.port === undefined || e.port === port)) return shown
  }
  return undefined
}

/**
 * What a TLS failure means, with its fix. OpenSSL's "wrong version number" is the classic answer
 * of a server that speaks plain HTTP on that port (a registry or mirror without TLS): calling it
 * an untrusted certificate sent people looking for a CA file that would not help.
 */
function tlsFailure(code: string, message: string): string {
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' || code === 'ERR_SSL_HTTP_REQUEST') {
    return `TLS failed (${code}): the server does not speak TLS on that port (plain HTTP?): use an http:// URL, or --insecure for an ollama:// registry without TLS`
  }
  if (/^ERR_SSL_/.test(code)) return `TLS handshake failed (${code}): the server and mtune (Node's OpenSSL) share no protocol version or cipher`
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    // Node's words: "... is not in the cert's altnames: DNS:a, DNS:b" (or "cert's list: IP", "cert's CN: name").
    const names = /cert's (?:altnames|list|CN): (.*)$/.exec(message)?.[1]
    return `TLS verification failed (${code}): the server's certificate is for other names${names ? ` (${names})` : ''}: use a URL with one of them`
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return `TLS verification failed (${code}): the server's certificate is not valid at this machine's time (${new Date().toISOString()}): check the clock (timedatectl), else the server's certificate`
  }
  // bin/run.js adds the system's CA bundle (or SSL_CERT_FILE) to Node's own, unless the user set one.
  const extra = process.env.NODE_EXTRA_CA_CERTS
  return extra
    ? `TLS verification failed (${code}): the server's certificate is not trusted by Node's CAs or those in ${extra}: add the private CA there (update-ca-certificates, for the system's store), or point NODE_EXTRA_CA_CERTS at a file with it`
    : `TLS verification failed (${code}): the server's certificate is not trusted; for a private CA, NODE_EXTRA_CA_CERTS=/path/to/ca.pem`
}

/**
 * The proxy (HTTPS_PROXY/HTTP_PROXY) answered the tunnel request with something else than 200,
 * which undici reports only as text. Its own refusals are fatal: retrying changes nothing.
 */
function proxyRefusal(status: number, cause: unknown): TransferError {
  if (status === 407) {
    return new TransferError('fatal', 'the proxy wants credentials, or refused the ones given (407): put them in HTTPS_PROXY/HTTP_PROXY as http://USER:PASSWORD@host:port', {cause})
  }
  if (status >= 500) return new TransferError('transient', `the proxy could not reach the server (${status})`, {cause})
  // Squid's and Debian tinyproxy's default rules open tunnels to port 443 (and 563) only.
  return new TransferError(
    'fatal',
    `the proxy refused the connection (${status}): check HTTPS_PROXY/HTTP_PROXY and NO_PROXY (many proxies open tunnels only to port 443: an internal server on another port belongs in NO_PROXY)`,
    {cause},
  )
}

/**
 * Whether a connection that failed had read from its server before: a kept-alive socket that
 * the server closed while idle, just as a request went out on it (servers and load balancers
 * close idle connections all the time). undici says so in its SocketError. A fresh one that
 * read nothing may have been turned away by a limit on connections per client.
 */
export function onUsedSocket(error: unknown): boolean {
  const cause = error instanceof TransferError ? error.details.cause : error
  return ((cause as {socket?: {bytesRead?: number}})?.socket?.bytesRead ?? 0) > 0
}
