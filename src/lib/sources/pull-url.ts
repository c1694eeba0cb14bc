import {closeDispatcher, createDispatcher} from '../net/dispatcher.js'
import {pull} from '../transfer/engine.js'
import {urlId} from '../transfer/previous-pull.js'
import {DEFAULTS, type PulledBefore, type PullEvents, type PullOptions, type PullResult} from '../transfer/pull-types.js'
import {pulledRecordOf, rememberPull} from '../verify/pull-record.js'
import {parseCacheUrl} from './cache-endpoints.js'
import {hubFileHeaders} from './hub-files.js'
import type {UrlRoute} from './url-through-cache.js'

/**
 * `mtune pull URL`: one URL's file, with the Hub's token where the URL is a file of the Hub,
 * through the rack cache where one of its --origin prefixes covers the URL, and recorded once in
 * place: a URL publishes no digest, so `mtune verify FILE` and a re-run of the same pull go by
 * mtune's record of it (verify/pull-record.ts).
 */
export type UrlPull = Omit<PullOptions, 'url' | 'headers' | 'pulledBefore' | 'dispatcher'> & {
  /** An mtune cache (MTUNE_CACHE, --cache) the URL may go through. */
  cache?: string
}

export async function pullUrl(url: string, options: UrlPull, events: PullEvents): Promise<PullResult & UrlRoute> {
  const {cache, ...rest} = options
  const headers = hubFileHeaders(url)
  if (headers) events.debug?.(`${new URL(url).host} is the Hub: its file URL gets the Hub token, as hf:// would`)
  const from = (target: string, dispatcher?: PullOptions['dispatcher']) => pull({...rest, url: target, headers, pulledBefore: pulledBeforeOf(url), dispatcher}, events)
  const through = urlCacheFor(url, cache)
  let result: PullResult & UrlRoute
  if (through) {
    // Loaded only here: the cache's modules bring the model sources with them.
    const {pullUrlThroughCache} = await import('./url-through-cache.js')
    const dispatcher = createDispatcher({stallTimeoutMs: options.stallTimeoutMs ?? DEFAULTS.stallTimeoutMs})
    try {
      // The pool that asked the cache's page pulls too.
      result = await pullUrlThroughCache(url, through, dispatcher, options.signal, events, (u) => from(u, dispatcher))
    } finally {
      await closeDispatcher(dispatcher)
    }
  } else result = {...(await from(url)), via: 'origin'}
  rememberPull(result, url, events.debug)
  return result
}

/**
 * The cache a plain URL may go through (under one of its --origin mirrors): none for a URL with
 * credentials of its own or the Hub's token, which a shared cache must not serve to others.
 */
export function urlCacheFor(url: string, cache: string | undefined): string | undefined {
  if (!cache || new URL(url).username || hubFileHeaders(url)) return undefined
  return parseCacheUrl(cache)
}

/**
 * What an earlier pull of this very URL (query included, through its digest) recorded of the file
 * at a path: a re-run of that pull keeps the file if it is unchanged (through a cache, or from the
 * mirror --auto chose, too, since the record goes by the URL given).
 */
export const pulledBeforeOf =
  (url: string) =>
  (path: string): PulledBefore | undefined => {
    const record = pulledRecordOf(path)
    return record?.urlId === urlId(url) ? record : undefined
  }
