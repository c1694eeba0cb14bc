import {get} from '../net/request.js'
import {parseContentRange} from '../net/http-range.js'
import {TransferError, classifyNetworkError, serverWait} from '../net/retry-policy.js'
import {timedDispatcher} from './connect-timings.js'
import {forwardingProxy, proxyConfig, proxyFor} from '../net/proxy-env.js'

export type ProbeStage = 'dns' | 'connect' | 'proxy' | 'tls' | 'http' | 'range' | 'timeout'

/** What bench measures: a URL, and the credentials granted to its origin (a hub token). */
export interface BenchTarget {
  url: string
  headers?: Record<string, string>
  /** What `mtune pull` is given for what this file stands for (hf://ORG/NAME and its endpoint, not the file's URL). */
  pull?: string[]
}

/** One probe of one mirror: each phase timed on its own. */
export interface ProbeSample {
  dnsMs?: number
  connectMs?: number
  tlsMs?: number
  /** Behind a proxy: the proxy (host:port) and the tunnel through it with TLS, together. */
  proxy?: string
  tunnelMs?: number
  /** Plain http:// that the proxy forwards: the connection to the proxy (its own to the server is in the first byte). */
  proxyConnectMs?: number
  ttfbMs?: number
  /** One stream's bytes/s over the short read. */
  throughputBps?: number
  bytes: number
  /** Where the bytes came from, after redirects. */
  finalUrl: string
  size?: number
  status?: number
  retryAfterMs?: number
  error?: {stage: ProbeStage; message: string}
}

/**
 * A ranged GET over fresh connections through the dispatcher a pull uses (proxies included),
 * timing DNS, TCP connect, TLS and the first byte, then reading up to `readBytes` (or for
 * `readMs`) for one stream's throughput. Redirects are followed under the pull's policy (a hub
 * to its CDN, credentials never across origins); the last hop's timings are what is reported.
 */
export async function probeOnce(
  target: BenchTarget | string,
  options: {readBytes: number; readMs: number; timeoutMs: number; signal?: AbortSignal},
): Promise<ProbeSample> {
  const {url, headers = {}} = typeof target === 'string' ? {url: target} : target
  const {dispatcher, timings} = timedDispatcher({timeoutMs: options.timeoutMs})
  const controller = new AbortController()
  const deadline = setTimeout(() => controller.abort(new TransferError('transient', 'timed out')), options.timeoutMs)
  const onAbort = () => controller.abort(new Error('aborted'))
  options.signal?.addEventListener('abort', onAbort, {once: true})
  const sample: ProbeSample = {bytes: 0, finalUrl: url}
  let stage: ProbeStage = 'connect'
  try {
    const sent = performance.now()
    // `headers` belong to the URL's own origin; get() drops them on a redirect to another.
    const res = await get(dispatcher, url, {...headers, range: `bytes=0-${options.readBytes - 1}`, 'accept-encoding': 'identity'}, controller.signal)
    const answered = performance.now()
    stage = 'http'
    sample.finalUrl = res.url
    sample.status = res.status
    const origin = new URL(res.url).origin
    const hop = timings.direct.get(origin)
    const tunnel = timings.tunnel.get(origin)
    const forward = !tunnel && !hop && forwardingProxy(res.url) ? timings.forward : undefined
    if (tunnel) {
      sample.proxy = timings.proxy?.host
      // The path's own round trip is hidden behind the proxy: no connect time, so no RTT guess.
      sample.tunnelMs = tunnel.ms
    } else if (forward) {
      sample.proxy = forward.host
      sample.proxyConnectMs = forward.connectMs
    } else if (hop) {
      sample.dnsMs = hop.dnsMs
      sample.connectMs = hop.connectMs
      sample.tlsMs = hop.tlsMs
    } else {
      // Through a proxy whose connections undici times nowhere (SOCKS5): named, not timed.
      const proxy = proxyFor(res.url, proxyConfig())
      if (proxy) sample.proxy = new URL(proxy).host
    }
    // From the moment the connection that answered was ready (or the request went out on a reused one).
    sample.ttfbMs = answered - Math.max(sent, tunnel?.readyAt ?? forward?.readyAt ?? hop?.readyAt ?? sent)
    const h = res.headers
    if (res.status === 429 || res.status === 503) {
      sample.retryAfterMs = serverWait(h)
      sample.error = {stage: 'http', message: `HTTP ${res.status} (rate limited)`}
    } else if (res.status === 200) {
      sample.error = {stage: 'range', message: 'no range support (200 to a Range request)'}
    } else if (res.status !== 206) {
      sample.error = {stage: 'http', message: `HTTP ${res.status}`}
    }
    if (sample.error) {
      // Not read: a 200 may be the whole file. Closed quietly.
      res.body.on('error', () => {}).destroy()
      return sample
    }
    sample.size = parseContentRange(h['content-range'])?.total
    const started = performance.now()
    const stopAt = setTimeout(() => res.body.destroy(), options.readMs)
    try {
      for await (const chunk of res.body) {
        sample.bytes += (chunk as Buffer).length
        if (sample.bytes >= options.readBytes) break
      }
    } catch {
      // Stopped at readMs: what arrived until then is the measurement.
    } finally {
      clearTimeout(stopAt)
    }
    const seconds = (performance.now() - started) / 1000
    sample.throughputBps = seconds > 0 ? sample.bytes / seconds : undefined
    return sample
  } catch (error) {
    sample.error = describe(error, stage, url, options.timeoutMs, controller.signal.aborted && !options.signal?.aborted, Boolean(timings.proxy || timings.forward))
    return sample
  } finally {
    clearTimeout(deadline)
    options.signal?.removeEventListener('abort', onAbort)
    await dispatcher.destroy().catch(() => {})
  }
}

/** Why a probe failed, at the stage where it failed, in the words `mtune bench` shows. */
function describe(error: unknown, stage: ProbeStage, url: string, timeoutMs: number, timedOut: boolean, viaProxy: boolean): ProbeSample['error'] {
  if (timedOut) return {stage: 'timeout', message: `no answer within ${timeoutMs} ms`}
  const e = classifyNetworkError(error)
  const code = (e.details.cause as {code?: string} | undefined)?.code
  const {host, hostname} = new URL(url)
  if (/^(the|cannot reach the) proxy/.test(e.message)) return {stage: 'proxy', message: e.message}
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return {stage: 'dns', message: `DNS lookup of ${hostname} failed (${code})`}
  if (code === 'ECONNREFUSED') return {stage: viaProxy ? 'proxy' : 'connect', message: viaProxy ? `connection refused (the proxy, or ${host} behind it)` : `connection refused (${host})`}
  if (code && /^ERR_TLS|CERT|SSL|^UNABLE_TO_|SIGNATURE/.test(code)) return {stage: 'tls', message: `TLS failed: ${code}`}
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return {stage: 'timeout', message: `no answer within ${timeoutMs} ms (connect)`}
  return {stage, message: e.message}
}
