import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {mtuneCacheDir} from '../env-settings.js'

/** What we know of the path to the mirrors: from flags, from the last `mtune bench`, or assumed. */
export interface LinkEstimate {
  bandwidthBps?: number
  rttMs?: number
  /** Where the bandwidth came from. */
  source: 'flags' | 'bench' | 'interface' | 'unknown'
  /** Where the RTT came from (assumed: beside an interface's speed, or a --bandwidth alone). */
  rttSource?: 'flags' | 'bench' | 'assumed'
}

/**
 * The RTT assumed when nothing better is known: long enough for distant mirrors. One for doctor
 * and tune, so that doctor's buffer check and the buffers tune sets agree.
 */
export const ASSUMED_RTT_MS = 100

/**
 * Each of the two from the first place that has it: the flag, the last bench, the interface's
 * speed (bandwidth) or an assumption (RTT, once a bandwidth is known). A flag given alone is used
 * with the other value from elsewhere, never dropped for the bench.
 */
export function combineLink(given: {bandwidthBps?: number; rttMs?: number}, bench: {bandwidthBps: number; rttMs: number} | undefined, ifaceMbps: number | undefined): LinkEstimate {
  const bandwidth: Pick<LinkEstimate, 'bandwidthBps' | 'source'> = given.bandwidthBps
    ? {bandwidthBps: given.bandwidthBps, source: 'flags'}
    : bench
      ? {bandwidthBps: bench.bandwidthBps, source: 'bench'}
      : ifaceMbps
        ? {bandwidthBps: (ifaceMbps * 1e6) / 8, source: 'interface'}
        : {source: 'unknown'}
  const rtt: Pick<LinkEstimate, 'rttMs' | 'rttSource'> = given.rttMs
    ? {rttMs: given.rttMs, rttSource: 'flags'}
    : bench
      ? {rttMs: bench.rttMs, rttSource: 'bench'}
      : bandwidth.bandwidthBps
        ? {rttMs: ASSUMED_RTT_MS, rttSource: 'assumed'}
        : {}
  return {...bandwidth, ...rtt}
}

/** Where the numbers came from, in words: "from --bandwidth/--rtt", "interface speed, 100 ms RTT assumed"... */
export function linkOrigin(link: LinkEstimate): string {
  const {source, rttSource} = link
  if (source === 'flags' && rttSource === 'flags') return 'from --bandwidth/--rtt'
  if (source === 'bench' && rttSource === 'bench') return 'from the last mtune bench'
  const bandwidth = {flags: 'bandwidth from --bandwidth', bench: 'bandwidth from the last mtune bench', interface: 'interface speed', unknown: 'bandwidth unknown'}[source]
  const rtt = {flags: 'RTT from --rtt', bench: 'RTT from the last mtune bench', assumed: `${link.rttMs} ms RTT assumed`}[rttSource ?? 'assumed']
  return `${bandwidth}, ${rtt}`
}

/** ` --bandwidth NMbit --rtt Nms`: the numbers tune sizes buffers from, as its flags. */
export const tuneFlags = (link: {bandwidthBps: number; rttMs: number}): string =>
  ` --bandwidth ${Math.max(1, Math.round((link.bandwidthBps * 8) / 1e6))}Mbit --rtt ${link.rttMs}ms`

/** The flags that reproduce a link taken in part from flags (for a fix line), or none. */
export const linkFlags = (link: LinkEstimate): string =>
  (link.source === 'flags' || link.rttSource === 'flags') && link.bandwidthBps && link.rttMs ? tuneFlags({bandwidthBps: link.bandwidthBps, rttMs: link.rttMs}) : ''

export const benchResultsPath = (env = process.env) => join(mtuneCacheDir(env), 'bench.json')

/** The best mirror's numbers from the last `mtune bench`, if it ran. */
export function lastBench(env = process.env): {bandwidthBps: number; rttMs: number} | undefined {
  try {
    const saved = JSON.parse(readFileSync(benchResultsPath(env), 'utf8')) as {link?: {bandwidthBps?: number; rttMs?: number}}
    const link = saved.link
    if (link && Number.isFinite(link.bandwidthBps) && Number.isFinite(link.rttMs)) return {bandwidthBps: link.bandwidthBps!, rttMs: link.rttMs!}
  } catch {
    // no bench yet
  }
  return undefined
}

/** The bandwidth-delay product in bytes: what one TCP stream needs in flight to fill the path. */
export const bdpBytes = (bandwidthBps: number, rttMs: number): number => Math.ceil((bandwidthBps * rttMs) / 1000)
