import {setTimeout as sleep} from 'node:timers/promises'
import type {Dispatcher} from 'undici'
import {ExitCode, MtuneError} from '../errors.js'
import {get, redact} from '../net/request.js'
import {backoffDelay, cappedWait, serverWait} from '../net/retry-policy.js'

export interface ApiContext {
  dispatcher: Dispatcher
  headers: Record<string, string>
  signal?: AbortSignal
  /** Told when mtune waits for a rate limit. */
  warn?(message: string): void
  /** --debug's lines. */
  debug?(line: string): void
}

export interface ApiAnswer {
  status: number
  headers: Record<string, string | undefined>
  body: Buffer
  url: string
}

/**
 * A hub that did not answer, or failed (5xx), as against one that said no (not found, gated, a
 * refused token): what asking elsewhere (the origin behind a cache, the cache's own snapshot)
 * can help with. From the words apiGet and the hubs' error lines use.
 */
export const hubDown = (error: unknown): boolean =>
  error instanceof MtuneError && error.exitCode === ExitCode.remote && /HTTP 5\d\d|cannot reach|not answer/.test(error.message)

/**
 * GET an API document. 429 and 5xx are waited out (Retry-After or RateLimit, said aloud),
 * a few times; every other answer is returned for the caller to interpret.
 */
export async function apiGet(ctx: ApiContext, url: string, accept = 'application/json'): Promise<ApiAnswer> {
  for (let attempt = 1; ; attempt++) {
    let res
    try {
      res = await get(ctx.dispatcher, url, {...ctx.headers, accept, 'accept-encoding': 'identity'}, ctx.signal)
    } catch (error) {
      if (attempt >= 4) throw new MtuneError('remote', `cannot reach ${redact(url)}: ${(error as Error).message}`, ExitCode.remote, {cause: error})
      await sleep(backoffDelay(attempt + 1, Math.random), undefined, {signal: ctx.signal})
      continue
    }
    const body = Buffer.from(await res.body.arrayBuffer())
    const retryable = res.status === 429 || res.status === 408 || res.status >= 500
    if (!retryable || attempt >= 5) return {status: res.status, headers: res.headers, body, url: res.url}
    const asked = serverWait(res.headers)
    // The engine's schedule (retry-policy.ts), or what the server asked for, capped.
    const wait = cappedWait(asked ?? backoffDelay(attempt + 1, Math.random))
    ctx.warn?.(`${res.status === 429 ? 'rate limited' : `HTTP ${res.status}`} by ${new URL(url).host}: waiting ${wait.words}${asked === undefined ? '' : ' as it asked'}`)
    await sleep(wait.ms, undefined, {signal: ctx.signal})
  }
}

export function parseJson<T>(answer: ApiAnswer, what: string): T {
  try {
    return JSON.parse(answer.body.toString('utf8')) as T
  } catch {
    throw new MtuneError('bad-answer', `${what}: the server sent something that is not JSON (HTTP ${answer.status})`, ExitCode.remote)
  }
}
