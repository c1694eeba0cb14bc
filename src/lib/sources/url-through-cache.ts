import type {Dispatcher} from 'undici'
import {errorMessage} from '../errors.js'
import {redact} from '../net/request.js'
import {probeCache} from './cache-probe.js'
import {cacheCannotHelp, theCache} from './through-cache.js'

/**
 * A plain URL through an mtune cache: a cache serves plain file mirrors at /-/origin/NAME/
 * (serve --origin NAME=PREFIX) and lists them on its page, so that with MTUNE_CACHE set
 * fleet-wide, `mtune pull https://mirror.corp/models/x.gguf` is fetched once for the rack, as
 * hf:// and ollama:// sources are. The URL itself stays the fallback.
 */

/**
 * Pure: the cache's form of `url` under one of its origins, or undefined. A URL with credentials
 * or a query (a signed link) is someone's own: a shared cache must not serve it to others.
 */
export function cachedForm(url: string, cache: string, origins: Record<string, string> = {}): {url: string; name: string} | undefined {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return undefined
  }
  if (u.username || u.password || u.search || u.hash) return undefined
  for (const [name, prefix] of Object.entries(origins)) {
    let p: string
    try {
      p = new URL(prefix).href.replace(/\/+$/, '')
    } catch {
      continue
    }
    if (u.href === p || u.href.startsWith(`${p}/`)) return {url: `${cache}/-/origin/${name}${u.href.slice(p.length)}`, name}
  }
  return undefined
}

/** Asks the cache for its origins (its page): whether it answers as an mtune cache, and `url`'s form there. */
export async function routeThroughCache(url: string, cache: string, dispatcher: Dispatcher, signal?: AbortSignal): Promise<{answers: boolean; routed?: {url: string; name: string}}> {
  const probe = await probeCache(dispatcher, cache, {timeoutMs: 5_000, signal})
  return probe.mtune ? {answers: true, routed: cachedForm(url, cache, probe.origins)} : {answers: false}
}

export interface UrlRoute {
  /** Where the bytes came from in the end. */
  via: 'cache' | 'origin'
}

/**
 * Pulls `url` through the cache when one of its origins covers it, else directly; a cache that
 * does not answer, or fails the pull (kept on disk: the same destination resumes), leaves the
 * URL to be pulled directly, with one warning. `pullFrom` is the pull of one URL.
 */
export async function pullUrlThroughCache<T>(
  url: string,
  cache: string,
  dispatcher: Dispatcher,
  signal: AbortSignal | undefined,
  events: {info?(m: string): void; warn?(m: string): void; debug?(m: string): void},
  pullFrom: (url: string) => Promise<T>,
): Promise<T & UrlRoute> {
  const shown = theCache(cache)
  const {answers, routed} = await routeThroughCache(url, cache, dispatcher, signal)
  if (!answers) {
    events.debug?.(`${shown} does not answer: ${redact(url)} is pulled directly`)
    return {...(await pullFrom(url)), via: 'origin'}
  }
  if (!routed) {
    events.debug?.(`${shown} serves no origin of ${redact(url)} (mtune cache serve --origin NAME=URL adds one): pulled directly`)
    return {...(await pullFrom(url)), via: 'origin'}
  }
  events.info?.(`through ${shown} (its origin ${routed.name})`)
  try {
    return {...(await pullFrom(routed.url)), via: 'cache'}
  } catch (error) {
    if (cacheCannotHelp(error) || signal?.aborted) throw error
    events.warn?.(`${shown} failed (${errorMessage(error)}): pulling ${redact(url)} directly`)
    return {...(await pullFrom(url)), via: 'origin'}
  }
}
