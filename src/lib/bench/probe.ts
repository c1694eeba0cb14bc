import {lookup} from 'node:dns/promises'
import {connect as netConnect, type Socket} from 'node:net'
import {connect as tlsConnect} from 'node:tls'
import {USER_AGENT} from '../net/request.js'
import {nextHop, withUserinfo} from '../net/url-credentials.js'
import {parseContentRange} from '../net/http-range.js'

export type ProbeStage = 'dns' | 'connect' | 'tls' | 'http' | 'range' | 'timeout'

/** One probe of one mirror: each phase timed on its own. */
export interface ProbeSample {
  dnsMs?: number
  connectMs?: number
  tlsMs?: number
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

interface Head {
  status: number
  headers: Record<string, string>
}

/**
 * A ranged GET over a fresh socket, timing DNS, TCP connect, TLS and the first byte, then
 * reading up to `readBytes` (or for `readMs`) for one stream's throughput. Redirects are
 * followed (a hub to its CDN); the last hop's timings are what is reported.
 */
export async function probeOnce(url: string, options: {readBytes: number; readMs: number; timeoutMs: number; signal?: AbortSignal}): Promise<ProbeSample> {
  let current = new URL(url)
  for (let hop = 0; hop < 6; hop++) {
    const {sample, location} = await probeHop(current, options)
    if (sample.status && [301, 302, 303, 307, 308].includes(sample.status) && location) {
      current = nextHop(current, location)
      continue
    }
    return sample
  }
  return {bytes: 0, finalUrl: current.href, error: {stage: 'http', message: 'too many redirects'}}
}

async function probeHop(url: URL, options: {readBytes: number; readMs: number; timeoutMs: number; signal?: AbortSignal}): Promise<{sample: ProbeSample; location?: string}> {
  const sample: ProbeSample = {bytes: 0, finalUrl: url.href}
  let location: string | undefined
  const https = url.protocol === 'https:'
  const port = Number(url.port || (https ? 443 : 80))
  const t0 = performance.now()
  let address: string
  try {
    address = (await lookup(url.hostname)).address
    sample.dnsMs = performance.now() - t0
  } catch (error) {
    sample.error = {stage: 'dns', message: `DNS lookup of ${url.hostname} failed (${(error as {code?: string}).code ?? 'error'})`}
    return {sample, location}
  }
  let socket: Socket | undefined
  const deadline = setTimeout(() => socket?.destroy(Object.assign(new Error('timed out'), {code: 'ETIMEDOUT'})), options.timeoutMs)
  const onAbort = () => socket?.destroy(new Error('aborted'))
  options.signal?.addEventListener('abort', onAbort, {once: true})
  let stage: ProbeStage = 'connect'
  try {
    const t1 = performance.now()
    socket = netConnect({host: address, port})
    await once(socket, 'connect')
    sample.connectMs = performance.now() - t1
    if (https) {
      stage = 'tls'
      const t2 = performance.now()
      const secure = tlsConnect({socket, servername: url.hostname, rejectUnauthorized: true})
      socket = secure
      await once(secure, 'secureConnect')
      sample.tlsMs = performance.now() - t2
    }
    stage = 'http'
    const end = options.readBytes - 1
    const auth = withUserinfo(url, {}).authorization
    socket.write(
      `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUser-Agent: ${USER_AGENT}\r\n${auth ? `Authorization: ${auth}\r\n` : ''}Range: bytes=0-${end}\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n`,
    )
    const t3 = performance.now()
    const result = await readResponse(socket, options.readBytes, options.readMs, () => (sample.ttfbMs ??= performance.now() - t3))
    sample.status = result.head.status
    const h = result.head.headers
    location = h.location
    if (result.head.status === 429 || result.head.status === 503) {
      sample.retryAfterMs = /^\d+$/.test(h['retry-after'] ?? '') ? Number(h['retry-after']) * 1000 : undefined
      sample.error = {stage: 'http', message: `HTTP ${result.head.status} (rate limited)`}
    } else if (result.head.status >= 300 && result.head.status < 400) {
      // a redirect: the caller follows it
    } else if (result.head.status === 200) {
      sample.error = {stage: 'range', message: 'no range support (200 to a Range request)'}
    } else if (result.head.status !== 206) {
      sample.error = {stage: 'http', message: `HTTP ${result.head.status}`}
    } else {
      sample.size = parseContentRange(h['content-range'])?.total
      sample.bytes = result.bytes
      sample.throughputBps = result.seconds > 0 ? result.bytes / result.seconds : undefined
    }
    return {sample, location}
  } catch (error) {
    const code = (error as {code?: string}).code
    if (code === 'ETIMEDOUT') sample.error = {stage: 'timeout', message: `no answer within ${options.timeoutMs} ms (${stage})`}
    else if (stage === 'connect') sample.error = {stage, message: code === 'ECONNREFUSED' ? `connection refused (${url.host})` : `cannot connect (${code ?? (error as Error).message})`}
    else if (stage === 'tls') sample.error = {stage, message: `TLS failed: ${code ?? (error as Error).message}`}
    else sample.error = {stage, message: (error as Error).message}
    return {sample, location}
  } finally {
    clearTimeout(deadline)
    options.signal?.removeEventListener('abort', onAbort)
    socket?.destroy()
  }
}

function once(socket: Socket, event: string): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once(event, () => resolve())
    socket.once('error', reject)
    socket.once('close', () => reject(Object.assign(new Error('connection closed'), {code: 'ECONNRESET'})))
  })
}

/** Status line and headers, then the body for throughput: bytes read after the first body byte. */
function readResponse(socket: Socket, maxBytes: number, maxMs: number, firstByte: () => void): Promise<{head: Head; bytes: number; seconds: number}> {
  return new Promise((resolve, reject) => {
    let header = Buffer.alloc(0)
    let head: Head | undefined
    let bytes = 0
    let started = 0
    let timer: NodeJS.Timeout | undefined
    const finish = () => {
      clearTimeout(timer)
      socket.removeAllListeners('data')
      if (!head) return reject(new Error('the connection closed before an HTTP answer'))
      resolve({head, bytes, seconds: started ? (performance.now() - started) / 1000 : 0})
    }
    socket.on('data', (chunk: Buffer) => {
      firstByte()
      if (!head) {
        header = Buffer.concat([header, chunk])
        const endAt = header.indexOf('\r\n\r\n')
        if (endAt < 0) return
        const lines = header.subarray(0, endAt).toString('latin1').split('\r\n')
        const status = Number(/^HTTP\/\d\.\d (\d{3})/.exec(lines[0])?.[1] ?? 0)
        const headers: Record<string, string> = {}
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':')
          if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim()
        }
        head = {status, headers}
        started = performance.now()
        timer = setTimeout(finish, maxMs)
        chunk = header.subarray(endAt + 4)
        if (status !== 206) return finish()
      }
      bytes += chunk.length
      if (bytes >= maxBytes) finish()
    })
    socket.once('end', finish)
    socket.once('close', finish)
    socket.once('error', (e) => (head ? finish() : reject(e)))
  })
}
