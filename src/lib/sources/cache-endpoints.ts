import {usageError} from '../errors.js'

/**
 * Where each ecosystem's requests go through an mtune cache at BASE (mtune cache serve prints
 * the same): Hugging Face at BASE, ModelScope at BASE/-/modelscope, Ollama's registry at BASE/v2/.
 */
export function cacheEndpoints(base: string): {hf: string; modelscope: string; ollama: string} {
  const url = parseCacheUrl(base)
  return {hf: url, modelscope: `${url}/-/modelscope`, ollama: url}
}

/** --cache / MTUNE_CACHE: the base URL of an mtune cache (a path prefix is kept: caches behind a proxy). */
export function parseCacheUrl(value: string): string {
  let url: URL
  try {
    // HOST:PORT, as `ollama pull HOST:PORT/...` names the cache: a cache serves plain http unless a
    // URL says otherwise (curl reads a URL without a scheme the same way).
    url = new URL(/^(\[[0-9a-fA-F:.]+\]|[\w.-]+):\d{1,5}(\/.*)?$/.test(value.trim()) ? `http://${value.trim()}` : value)
  } catch {
    throw usageError('bad-cache', `invalid --cache / MTUNE_CACHE "${value}": give the cache's URL or HOST:PORT, e.g. http://cache.rack1:8080`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usageError('bad-cache', `invalid --cache / MTUNE_CACHE "${value}": use http:// or https://`)
  if (url.search || url.hash) throw usageError('bad-cache', `invalid --cache / MTUNE_CACHE "${value}": no query or fragment`)
  return url.href.replace(/\/+$/, '')
}
