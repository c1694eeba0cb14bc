import {createReadStream, readdirSync, lstatSync} from 'node:fs'
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
}

export interface LogLine {
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

const noTraffic = (): Traffic => ({requests: 0, failed: 0, hits: 0, misses: 0, bytesUpstream: 0, bytesServed: 0})

/**
 * Pure: the traffic in log lines. A request served in slices logs its own line (its first slice)
 * and one per further slice (subrequests, with no request of their own: length 0).
 */
export function addUp(lines: Iterable<LogLine>): Traffic {
  const t = noTraffic()
  for (const l of lines) addLine(t, l)
  return finish(t)
}

function addLine(t: Traffic, l: LogLine): void {
  // The cache's own page (health checks, status) is not traffic.
  if (l.u === '/-/mtune') return
  if (num(l.len) > 0) {
    t.requests++
    const status = Number(l.s) || 0
    if (status >= 500) t.failed++
    // Bytes served are what clients got instead of fetching it themselves: an error page is not.
    if (status < 400) t.bytesServed += num(l.sent)
  }
  t.bytesUpstream += num(l.up)
  if (l.cache === 'HIT' || l.cache === 'REVALIDATED' || l.cache === 'UPDATING' || l.cache === 'STALE') t.hits++
  else if (l.cache === 'MISS' || l.cache === 'EXPIRED' || l.cache === 'BYPASS') t.misses++
}

const finish = (t: Traffic): Traffic => ({...t, hitRatio: t.hits + t.misses > 0 ? t.hits / (t.hits + t.misses) : undefined})

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
