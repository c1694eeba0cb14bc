import type {Dispatcher} from 'undici'
import {get} from '../net/request.js'

/**
 * Whether an mtune cache is at BASE: its own page (/-/mtune, which mtune cache serve answers)
 * through the pull's dispatcher. `answers`: something answered HTTP at all; `mtune`: it is an
 * mtune cache. Within `timeoutMs`, and at once on `signal`.
 */
export async function probeCache(dispatcher: Dispatcher, base: string, options: {timeoutMs: number; signal?: AbortSignal}): Promise<{answers: boolean; mtune: boolean; ms?: number}> {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), options.timeoutMs)
  const onAbort = () => controller.abort()
  options.signal?.addEventListener('abort', onAbort, {once: true})
  const started = performance.now()
  try {
    const res = await get(dispatcher, `${base}/-/mtune`, {}, controller.signal)
    const body = Buffer.from(await res.body.arrayBuffer()).toString('utf8')
    return {answers: true, mtune: res.status === 200 && body.includes('mtune cache'), ms: performance.now() - started}
  } catch {
    return {answers: false, mtune: false}
  } finally {
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', onAbort)
  }
}
