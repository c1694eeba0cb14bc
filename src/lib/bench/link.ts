import {readFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'
import {setting} from '../env-settings.js'

/** What we know of the path to the mirrors: from flags, from the last `mtune bench`, or assumed. */
export interface LinkEstimate {
  bandwidthBps?: number
  rttMs?: number
  source: 'flags' | 'bench' | 'interface' | 'unknown'
}

export function mtuneCacheDir(env = process.env): string {
  return join(setting(env, 'XDG_CACHE_HOME') ?? join(homedir(), '.cache'), 'mtune')
}

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
