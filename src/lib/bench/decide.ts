import {bdpBytes} from './link.js'
import type {Cell} from './grid.js'
import type {ProbeSample} from './probe.js'

export interface Stat {
  median: number
  min: number
  max: number
}

export function stat(values: Array<number | undefined>): Stat | undefined {
  const xs = values.filter((v): v is number => v !== undefined && Number.isFinite(v)).sort((a, b) => a - b)
  if (xs.length === 0) return undefined
  const mid = Math.floor(xs.length / 2)
  return {median: xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2, min: xs[0], max: xs[xs.length - 1]}
}

export interface MirrorSummary {
  url: string
  finalUrl?: string
  ok: boolean
  /** Why it failed, in words: DNS, refused, TLS, HTTP status, no range support. */
  reason?: string
  size?: number
  dnsMs?: Stat
  connectMs?: Stat
  tlsMs?: Stat
  ttfbMs?: Stat
  throughputBps?: Stat
  throttled?: boolean
  /** It answered, but with the whole file (200) to every Range request: one stream only. */
  noRanges?: boolean
  /** Reached through this proxy (HTTPS_PROXY/HTTP_PROXY): the tunnel and TLS are timed together. */
  proxy?: string
  tunnelMs?: Stat
  /** Plain http:// forwarded by that proxy (no tunnel): the connection to the proxy. */
  proxyConnectMs?: Stat
}

export function summarizeMirror(url: string, samples: ProbeSample[]): MirrorSummary {
  const good = samples.filter((s) => !s.error)
  if (good.length === 0) {
    const e = samples.find((s) => s.error)?.error
    const noRanges = samples.length > 0 && samples.every((s) => s.error?.stage === 'range')
    return {url, ok: false, reason: e?.message ?? 'no answer', throttled: samples.some((s) => s.status === 429 || s.status === 503), ...(noRanges ? {noRanges} : {})}
  }
  return {
    url,
    finalUrl: good[0].finalUrl,
    ok: true,
    size: good[0].size,
    dnsMs: stat(good.map((s) => s.dnsMs)),
    connectMs: stat(good.map((s) => s.connectMs)),
    tlsMs: stat(good.map((s) => s.tlsMs)),
    ttfbMs: stat(good.map((s) => s.ttfbMs)),
    throughputBps: stat(good.map((s) => s.throughputBps)),
    // Behind a proxy (every sample tunnelled): the proxy named, the tunnel timed.
    ...(good.some((s) => s.proxy) ? {proxy: good.find((s) => s.proxy)?.proxy} : {}),
    ...(good.some((s) => s.tunnelMs !== undefined) ? {tunnelMs: stat(good.map((s) => s.tunnelMs))} : {}),
    ...(good.some((s) => s.proxyConnectMs !== undefined) ? {proxyConnectMs: stat(good.map((s) => s.proxyConnectMs))} : {}),
  }
}

/** Working mirrors first, fastest single stream first (first byte breaks ties); failures last. */
export function rankMirrors(mirrors: MirrorSummary[]): MirrorSummary[] {
  return [...mirrors].sort((a, b) => {
    if (a.ok !== b.ok) return a.ok ? -1 : 1
    const ta = a.throughputBps?.median ?? 0
    const tb = b.throughputBps?.median ?? 0
    if (Math.abs(ta - tb) > 0.05 * Math.max(ta, tb)) return tb - ta
    return (a.ttfbMs?.median ?? Infinity) - (b.ttfbMs?.median ?? Infinity)
  })
}

export interface GridAdvice {
  best: Cell
  connections: number
  chunkSize: number
  throughputBps: number
  reason: string
}

/** The most a mirror answered of a range when it answered less than asked (grid.ts), over a grid's cells. */
export const answerCap = (cells: Cell[]): number | undefined =>
  cells.reduce<number | undefined>((most, c) => (c.answeredAtMost === undefined ? most : Math.max(most ?? 0, c.answeredAtMost)), undefined)

/**
 * The knee: the fewest connections whose best chunk size reaches 95% of the best cell. More
 * connections than that only cost the server. A mirror that answers at most `cap` bytes of a
 * range gets no larger chunk: asked for more, it sends that much anyway.
 */
export function adviseGrid(cells: Cell[], format: (bps: number) => string, size: (b: number) => string, cap?: number): GridAdvice | undefined {
  const measured = cells.filter((c) => c.bytes > 0)
  if (measured.length === 0) return undefined
  const best = measured.reduce((a, b) => (b.throughputBps > a.throughputBps ? b : a))
  const byCount = new Map<number, Cell>()
  for (const c of measured) {
    const have = byCount.get(c.connections)
    if (!have || c.throughputBps > have.throughputBps) byCount.set(c.connections, c)
  }
  const counts = [...byCount.keys()].sort((a, b) => a - b)
  const knee = byCount.get(counts.find((n) => byCount.get(n)!.throughputBps >= 0.95 * best.throughputBps)!)!
  const fewer = counts.filter((n) => n < knee.connections).map((n) => byCount.get(n)!)
  const prev = fewer[fewer.length - 1]
  const below = prev ? `; ${prev.connections} connection${prev.connections > 1 ? 's reach' : ' reaches'} only ${format(prev.throughputBps)}` : ''
  const capped = cap !== undefined && knee.chunkSize > cap ? `; the mirror answers at most ${size(cap)} of a range, so each ${size(knee.chunkSize)} asked came as ${size(cap)}` : ''
  const reason =
    `${knee.connections} x ${size(knee.chunkSize)} reach ${format(knee.throughputBps)}, ${Math.round((knee.throughputBps / best.throughputBps) * 100)}% of the best ` +
    `(${format(best.throughputBps)} at ${best.connections} x ${size(best.chunkSize)})${below}${capped}`
  return {best, connections: knee.connections, chunkSize: capped ? cap! : knee.chunkSize, throughputBps: knee.throughputBps, reason}
}

export interface BufferVerdict {
  bdp: number
  needed: number
  ok: boolean
  /** What one stream can carry with the current buffers: window / RTT. */
  perStreamCapBps?: number
}

/** Can the host's TCP buffers carry the measured path? (twice the BDP, as fasterdata advises) */
export function bufferVerdict(bandwidthBps: number, rttMs: number, rmemMax?: number, tcpRmemMax?: number): BufferVerdict {
  const bdp = bdpBytes(bandwidthBps, rttMs)
  const needed = 2 * bdp
  const window = rmemMax === undefined || tcpRmemMax === undefined ? undefined : Math.min(rmemMax, tcpRmemMax)
  return {bdp, needed, ok: window === undefined ? true : window >= needed, perStreamCapBps: window === undefined ? undefined : (window * 1000) / Math.max(rttMs, 0.001)}
}

export const bottleneck = (networkBps: number, diskBps: number): 'network' | 'disk' => (diskBps < networkBps ? 'disk' : 'network')
