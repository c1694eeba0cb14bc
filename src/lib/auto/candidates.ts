import type {Dispatcher} from 'undici'
import {errorMessage} from '../errors.js'
import {shownUrl} from '../net/url-credentials.js'
import {hfEndpoint} from '../sources/hf.js'
import {modelscopeEndpoint} from '../sources/modelscope.js'
import type {Plan} from '../sources/plan.js'
import type {SourceRef} from '../sources/reference.js'
import {resolvePlan} from '../sources/resolve.js'

/** Well-known public mirrors, tried unless --no-public-mirrors. */
export const PUBLIC_MIRRORS: Record<string, string[]> = {
  hf: ['https://hf-mirror.com'],
  modelscope: ['https://www.modelscope.ai'],
}

export interface Candidate {
  /** What the user would recognise: the URL, or the endpoint. */
  label: string
  /** A URL of the (largest) file on this candidate: what is probed and benched. */
  url?: string
  endpoint?: string
  ok: boolean
  reason?: string
  plan?: Plan
}

const unique = (xs: Array<string | undefined>) => [...new Set(xs.filter((x): x is string => Boolean(x)).map((x) => x.replace(/\/+$/, '')))]

/**
 * Where this source could come from: the source's default, HF_ENDPOINT / MODELSCOPE_ENDPOINT,
 * each --endpoint and --mirror, and the public mirrors; each resolved (within a time limit) so
 * that those that fail are known before anything is measured.
 */
export async function findCandidates(
  ref: SourceRef,
  options: {mirrors: string[]; endpoints: string[]; publicMirrors: boolean; env?: NodeJS.ProcessEnv; dispatcher: Dispatcher; signal?: AbortSignal; timeoutMs?: number},
): Promise<Candidate[]> {
  const env = options.env ?? process.env
  if (ref.kind === 'url') return [ref.url, ...options.mirrors].map((url) => ({label: shownUrl(url), url, ok: true}))
  const extra = [...options.endpoints, ...options.mirrors]
  const endpoints =
    ref.kind === 'hf'
      ? unique(['https://huggingface.co', hfEndpoint(undefined, env), ...extra, ...(options.publicMirrors ? PUBLIC_MIRRORS.hf : [])])
      : ref.kind === 'modelscope'
        ? unique([modelscopeEndpoint(env), ...extra, ...(options.publicMirrors ? PUBLIC_MIRRORS.modelscope : [])])
        : [undefined]
  return Promise.all(
    endpoints.map(async (endpoint): Promise<Candidate> => {
      const controller = new AbortController()
      const timer = setTimeout(() => controller.abort(), options.timeoutMs ?? 8_000)
      const onAbort = () => controller.abort()
      options.signal?.addEventListener('abort', onAbort, {once: true})
      const label = endpoint ?? `${ref.kind === 'ollama' ? `${ref.host}` : ''}`
      try {
        const plan = await resolvePlan(ref, {endpoint}, {dispatcher: options.dispatcher, signal: controller.signal})
        const largest = [...plan.files].sort((a, b) => (b.size ?? 0) - (a.size ?? 0))[0]
        if (!largest) return {label, endpoint, ok: false, reason: 'no files'}
        return {label, endpoint, url: largest.url, ok: true, plan}
      } catch (error) {
        return {label, endpoint, ok: false, reason: controller.signal.aborted && !options.signal?.aborted ? 'no answer in time' : errorMessage(error)}
      } finally {
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
      }
    }),
  )
}
