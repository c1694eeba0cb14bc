import {basename} from 'node:path'
import type {Dispatcher} from 'undici'
import {ExitCode, MtuneError, usageError} from '../errors.js'
import {probeCache} from '../sources/cache-probe.js'
import type {PlannedFile} from '../sources/plan.js'
import type {SourceRef} from '../sources/reference.js'
import {resolvePlan} from '../sources/resolve.js'
import {hubMismatch, theCache} from '../sources/through-cache.js'
import {cachedForm} from '../sources/url-through-cache.js'
import type {PullEvents} from '../transfer/pull-types.js'
import {WARM_CHUNK, warmFile, type WarmedFile} from './warm.js'

export interface WarmReport {
  source: string
  /** The cache's URL. */
  cache: string
  version?: string
  files: WarmedFile[]
  bytes: number
  /** What the cache held already; the rest it fetched upstream during this warm. */
  cachedBytes: number
  seconds: number
  /** Every file with a published digest matched it. */
  intact: boolean
}

export interface WarmOptions {
  include?: string[]
  exclude?: string[]
  /** Paths in the repo named after the source. */
  files?: string[]
  connections: number
  dispatcher: Dispatcher
  signal?: AbortSignal
  events: PullEvents
}

/** What warming `ref` reads through `cache`: the model's plan as a pull through it would resolve it, or a URL's file under an origin. */
async function filesToWarm(ref: SourceRef, cache: string, o: WarmOptions): Promise<{source: string; version?: string; files: Array<Pick<PlannedFile, 'name' | 'url' | 'size' | 'sha256' | 'gitSha1'>>; headers: Record<string, string>}> {
  const probe = await probeCache(o.dispatcher, cache, {timeoutMs: 5_000, signal: o.signal})
  if (!probe.mtune) {
    throw new MtuneError('cache-down', `${theCache(cache)} does not answer as an mtune cache: start it on the cache host (mtune cache serve), or give its URL with --cache`, ExitCode.remote)
  }
  if (ref.kind === 'url') {
    const routed = cachedForm(ref.url, cache, probe.origins)
    if (!routed) {
      const origins = Object.values(probe.origins ?? {})
      const serves = origins.length ? `it serves ${origins.join(', ')}` : 'it serves no plain mirror'
      throw usageError('not-an-origin', `${ref.url} is under none of the origins of ${theCache(cache)} (${serves}): add one with mtune cache serve --origin NAME=URL-PREFIX`)
    }
    return {source: ref.url, files: [{name: basename(new URL(ref.url).pathname) || ref.url, url: routed.url}], headers: {}}
  }
  const elsewhere = hubMismatch(ref, cache, probe.upstreams)
  if (elsewhere) throw usageError('other-hub', `${theCache(cache)} ${elsewhere.mismatch}: it cannot hold this model${elsewhere.hint}`)
  const plan = await resolvePlan(ref, {include: o.include, exclude: o.exclude, files: o.files, cache}, {dispatcher: o.dispatcher, signal: o.signal, warn: o.events.warn})
  // All of the model, whatever this host has on disk: the cache is for the others.
  return {source: plan.source, version: plan.version, files: plan.files, headers: plan.headers}
}

/**
 * Reads every file of `ref` through `cache` once, checked against its published digest; progress
 * over the whole model. Files of one slice or less (configs, tokenizers, small shards: one
 * request each) go `connections` at a time, so that a model of many small files is not a round
 * trip per file; then each larger file in turn over `connections` (warm.ts bounds its memory).
 */
export async function warmSource(ref: SourceRef, cache: string, o: WarmOptions): Promise<WarmReport> {
  const started = performance.now()
  const {source, version, files, headers} = await filesToWarm(ref, cache, o)
  const total = files.every((f) => f.size !== undefined) ? files.reduce((n, f) => n + (f.size ?? 0), 0) : undefined
  o.events.info?.(`warming ${source}${version ? ` (${version})` : ''}: ${files.length} file${files.length === 1 ? '' : 's'} through ${theCache(cache)}`)
  let done = 0
  const progress = () => {
    const seconds = (performance.now() - started) / 1000
    const rate = seconds > 0 ? done / seconds : 0
    o.events.progress?.({size: total, done, rate, etaSeconds: total !== undefined && rate > 0 ? (total - done) / rate : undefined, connections: o.connections, elapsedMs: seconds * 1000})
  }
  const timer = setInterval(progress, 500)
  let warmed: WarmedFile[] = []
  try {
    warmed = await inTurn(files, o.connections, (f) => warmFile(f, {dispatcher: o.dispatcher, headers, connections: o.connections, signal: o.signal, onBytes: (n) => (done += n)}))
  } finally {
    clearInterval(timer)
  }
  progress()
  return {
    source,
    cache,
    ...(version ? {version} : {}),
    files: warmed,
    bytes: warmed.reduce((n, f) => n + f.size, 0),
    cachedBytes: warmed.reduce((n, f) => n + f.cachedBytes, 0),
    seconds: (performance.now() - started) / 1000,
    intact: warmed.every((f) => f.verified !== false),
  }
}

/**
 * Files of one slice or less `connections` at a time (one request each), then each larger file
 * alone (it has `connections` of its own); the results in the files' order. The first failure
 * stops what has not started.
 */
export async function inTurn<F extends {size?: number}, R>(files: F[], connections: number, warm: (file: F) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(files.length)
  const isSmall = (f: F) => f.size !== undefined && f.size <= WARM_CHUNK
  const small = files.flatMap((f, i) => (isSmall(f) ? [i] : []))
  let next = 0
  let failed = false
  const worker = async () => {
    while (!failed && next < small.length) {
      const i = small[next++]
      try {
        out[i] = await warm(files[i])
      } catch (error) {
        failed = true
        throw error
      }
    }
  }
  await Promise.all(Array.from({length: Math.min(Math.max(1, connections), small.length)}, worker))
  for (const [i, f] of files.entries()) if (!isSmall(f)) out[i] = await warm(f)
  return out
}
