import {createReadStream, readdirSync, lstatSync, statfsSync} from 'node:fs'
import {nearestExisting} from '../fs-dirs.js'
import {join} from 'node:path'
import {createInterface} from 'node:readline'

/** What the access log says: requests, slices fetched (hit or not), bytes from upstream and to clients. */
export interface Traffic {
  /** Client requests (a request served in slices counts once). */
  requests: number
  /**
   * Of those, answered 5xx: the cache could not reach a hub or CDN (no name server, no route, a
   * refused TLS certificate), or the hub itself failed. Worth a look at logs/error.log.
   */
  failed: number
  /** Cached objects' slices: served from the cache, fetched upstream. */
  hits: number
  misses: number
  /** hits / (hits + misses), or undefined before the first cacheable request. */
  hitRatio?: number
  bytesUpstream: number
  bytesServed: number
  /**
   * What the rack asked this cache for, most recent first: each model (or origin file) with the
   * requests that named it (listings, manifests, /resolve/) and when it was last asked for.
   */
  models: Array<{name: string; requests: number; lastAt: string}>
}

export interface LogLine {
  t?: string
  m?: string
  u?: string
  s?: string
  sent?: string
  cache?: string
  up?: string
  len?: string
}

const num = (s: string | undefined) => {
  // $upstream_bytes_received lists each upstream tried: "123, 456".
  let total = 0
  for (const part of (s ?? '').split(/[,:]\s*/)) total += Number(part) || 0
  return total
}

/** While adding up: the models by name. */
type Adding = Omit<Traffic, 'models'> & {byModel: Map<string, {requests: number; last: number}>}

const noTraffic = (): Adding => ({requests: 0, failed: 0, hits: 0, misses: 0, bytesUpstream: 0, bytesServed: 0, byModel: new Map()})

/**
 * The model a request names, as mtune would pull it, from its path: a Hub listing or /resolve/,
 * an Ollama manifest, a ModelScope listing or file, a file under an origin. CDN slices name none
 * (their bytes are the models' all the same).
 */
export function modelOf(uri: string | undefined): string | undefined {
  if (!uri) return undefined
  let m = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/(?:revision|tree)\//.exec(uri)
  if (m) return `hf://${m[1] === 'datasets' ? 'datasets/' : ''}${m[2]}`
  m = /^\/(datasets\/)?([^/-][^/]*\/[^/]+)\/resolve\//.exec(uri)
  if (m) return `hf://${m[1] ?? ''}${m[2]}`
  m = /^\/v2\/([^/]+)\/([^/]+)\/manifests\/([^/]+)$/.exec(uri)
  if (m) return `ollama ${m[1] === 'library' ? '' : `${m[1]}/`}${m[2]}:${m[3]}`
  // nginx logs the URI as it passed it on: without /-/modelscope.
  m = /^(?:\/-\/modelscope)?\/api\/v1\/models\/([^/]+\/[^/]+)\/repo/.exec(uri)
  if (m) return `modelscope://${m[1]}`
  m = /^\/-\/origin\/([^/]+)(\/.+)$/.exec(uri)
  if (m) return `origin ${m[1]}: ${m[2]}`
  return undefined
}

/**
 * Pure: the traffic in log lines. A request served in slices logs its own line (its first slice)
 * and one per further slice (subrequests, with no request of their own: length 0).
 */
export function addUp(lines: Iterable<LogLine>): Traffic {
  const t = noTraffic()
  for (const l of lines) addLine(t, l)
  return finish(t)
}

function addLine(t: Adding, l: LogLine): void {
  // The cache's own page (health checks, status) is not traffic.
  if (l.u === '/-/mtune') return
  if (num(l.len) > 0) {
    t.requests++
    const model = modelOf(l.u)
    if (model) {
      const seen = t.byModel.get(model) ?? {requests: 0, last: 0}
      t.byModel.set(model, {requests: seen.requests + 1, last: Math.max(seen.last, Number(l.t) || 0)})
    }
    const status = Number(l.s) || 0
    if (status >= 500) t.failed++
    // Bytes served are what clients got instead of fetching it themselves: an error page is not.
    if (status < 400) t.bytesServed += num(l.sent)
  }
  t.bytesUpstream += num(l.up)
  if (l.cache === 'HIT' || l.cache === 'REVALIDATED' || l.cache === 'UPDATING' || l.cache === 'STALE') t.hits++
  else if (l.cache === 'MISS' || l.cache === 'EXPIRED' || l.cache === 'BYPASS') t.misses++
}

function finish({byModel, ...t}: Adding): Traffic {
  const models = [...byModel]
    .sort((a, b) => b[1].last - a[1].last || b[1].requests - a[1].requests)
    .map(([name, m]) => ({name, requests: m.requests, lastAt: new Date(m.last * 1000).toISOString()}))
  return {...t, hitRatio: t.hits + t.misses > 0 ? t.hits / (t.hits + t.misses) : undefined, models}
}

/** The log read as a stream, line by line: a busy cache's log can be large. */
export async function readTraffic(accessLog: string): Promise<Traffic> {
  const t = noTraffic()
  try {
    const rl = createInterface({input: createReadStream(accessLog), crlfDelay: Infinity})
    for await (const text of rl) {
      try {
        addLine(t, JSON.parse(text) as LogLine)
      } catch {
        // a line cut by a crash, or written by something else
      }
    }
  } catch {
    // no log yet
  }
  return finish(t)
}

/** The filesystem that holds (or will hold) `dir`: its size, for --min-free's share, and what is free on it. */
export function diskOf(dir: string): {totalBytes: number; freeBytes: number} | undefined {
  try {
    const s = statfsSync(nearestExisting(dir).found?.path ?? '/')
    return {totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize}
  } catch {
    return undefined
  }
}

/** Bytes the cache's files take on disk (what nginx's max_size counts). */
export function diskUsed(dir: string): number {
  let total = 0
  const walk = (d: string) => {
    let names: string[]
    try {
      names = readdirSync(d)
    } catch {
      return
    }
    for (const name of names) {
      const p = join(d, name)
      const s = lstatSync(p, {throwIfNoEntry: false})
      if (!s) continue
      if (s.isDirectory()) walk(p)
      else total += s.blocks * 512
    }
  }
  walk(dir)
  return total
}
