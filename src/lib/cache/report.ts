import {existsSync} from 'node:fs'
import {resolve} from 'node:path'
import {cacheUrl} from './config.js'
import {parseListen} from './options.js'
import {answers, leftoverWorkers, paths, readState, runningCaches, runningPid, type CacheState} from './nginx.js'
import {diskOf, diskUsed, readTraffic, type Traffic} from './status.js'

export interface CacheStatus extends Traffic {
  dir: string
  running: boolean
  pid: number | null
  /** It answers HTTP at its address (running but not answering is worth saying). */
  answering: boolean
  url: string | null
  endpoints: CacheState['endpoints'] | null
  /** The cache's files, its --max-size, the space nginx keeps free on the disk (--min-free) and what is free now. */
  disk: {usedBytes: number; maxBytes: number | null; minFreeBytes: number | null; freeBytes: number | null}
  /** Not running here: the caches that run on this host in other dirs (a typo, root's default dir). */
  runningElsewhere: Array<{dir: string; pid: number; listen: string}>
  /** Not running: nginx processes its master left running when it died (nginx.ts leftoverWorkers). */
  leftover: number[]
}

export async function cacheStatus(dirArg: string): Promise<CacheStatus> {
  const dir = resolve(dirArg)
  const state = readState(dir)
  const pid = runningPid(dir) ?? null
  // Where this host reaches it (a wildcard listen address is reached on loopback).
  const local = state ? cacheUrl({listen: parseListen(state.listen)}) : undefined
  const answering = Boolean(pid && local && (await answers(local)))
  const traffic = await readTraffic(paths(dir).accessLog)
  return {
    dir,
    running: Boolean(pid),
    pid,
    answering,
    url: state?.url ?? null,
    endpoints: state?.endpoints ?? null,
    disk: {usedBytes: diskUsed(paths(dir).cache), maxBytes: state?.maxSize ?? null, minFreeBytes: state?.minFreeBytes ?? null, freeBytes: existsSync(dir) ? (diskOf(dir)?.freeBytes ?? null) : null},
    ...traffic,
    runningElsewhere: pid ? [] : runningCaches().filter((c) => c.dir !== dir),
    leftover: pid ? [] : leftoverWorkers(dir),
  }
}
