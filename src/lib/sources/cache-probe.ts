import type {Dispatcher} from 'undici'
import {get} from '../net/request.js'

export interface CacheProbe {
  answers: boolean
  mtune: boolean
  ms?: number
  /** The hubs behind the cache, as its page lists them (a cache started by an older mtune does not). */
  upstreams?: CacheUpstreams
  /** Plain file mirrors it serves at /-/origin/NAME/ (serve --origin NAME=URL): NAME -> URL prefix. */
  origins?: Record<string, string>
}

export interface CacheUpstreams {
  hf?: string
  ollama?: string
  modelscope?: string
}

function upstreamsIn(body: string): CacheUpstreams | undefined {
  try {
    const page = JSON.parse(body) as {upstreams?: Record<string, unknown>}
    const pick = (name: string) => (typeof page.upstreams?.[name] === 'string' ? (page.upstreams[name] as string) : undefined)
    return page.upstreams ? {hf: pick('hf'), ollama: pick('ollama'), modelscope: pick('modelscope')} : undefined
  } catch {
    return undefined
  }
}

function originsIn(body: string): Record<string, string> | undefined {
  try {
    const page = JSON.parse(body) as {origins?: Record<string, unknown>}
    return Object.fromEntries(Object.entries(page.origins ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string'))
  } catch {
    return undefined
  }
}

/**
 * Whether an mtune cache is at BASE: its own page (/-/mtune, which mtune cache serve answers)
 * through the pull's dispatcher. `answers`: something answered HTTP at all; `mtune`: it is an
 * mtune cache. Within `timeoutMs`, and at once on `signal`.
 */
export async function probeCache(dispatcher: Dispatcher, base: string, options: {timeoutMs: number; signal?: AbortSignal}): Promise<CacheProbe> {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), options.timeoutMs)
  const onAbort = () => controller.abort()
  options.signal?.addEventListener('abort', onAbort, {once: true})
  const started = performance.now()
  try {
    const res = await get(dispatcher, `${base}/-/mtune`, {}, controller.signal)
    const body = Buffer.from(await res.body.arrayBuffer()).toString('utf8')
    const mtune = res.status === 200 && body.includes('mtune cache')
    return {answers: true, mtune, ms: performance.now() - started, upstreams: mtune ? upstreamsIn(body) : undefined, origins: mtune ? originsIn(body) : undefined}
  } catch {
    return {answers: false, mtune: false}
  } finally {
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', onAbort)
  }
}
