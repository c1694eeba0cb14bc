import type {Dispatcher} from 'undici'
import {ExitCode, MtuneError, errorMessage} from '../errors.js'
import {shownUrl} from '../net/credentials.js'
import {hfEndpoint} from '../sources/hf.js'
import {modelscopeEndpoint} from '../sources/modelscope.js'
import type {Plan} from '../sources/plan.js'
import type {SourceRef} from '../sources/reference.js'
import {resolvePlan, tokenFor, type ResolveOptions} from '../sources/resolve.js'
import {hubFileHeaders} from '../sources/hub-files.js'

/** Well-known public mirrors, tried unless --no-public-mirrors. */
export const PUBLIC_MIRRORS: Record<'hf' | 'modelscope', string[]> = {
  hf: ['https://hf-mirror.com'],
  modelscope: ['https://www.modelscope.ai'],
}

/**
 * The public mirrors for a hub: MTUNE_HF_PUBLIC_MIRRORS / MTUNE_MODELSCOPE_PUBLIC_MIRRORS
 * (comma-separated; empty for none) replace the built-in list, for a site that runs its own
 * public-facing mirror, an air-gapped network, or a test.
 */
export function publicMirrors(kind: 'hf' | 'modelscope', env = process.env): string[] {
  const given = env[kind === 'hf' ? 'MTUNE_HF_PUBLIC_MIRRORS' : 'MTUNE_MODELSCOPE_PUBLIC_MIRRORS']
  if (given === undefined) return PUBLIC_MIRRORS[kind]
  return given.split(',').map((s) => s.trim()).filter(Boolean)
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
  /**
   * The user's hub token was sent to it: only endpoints the user chose get it (the default hub,
   * HF_ENDPOINT / MODELSCOPE_ENDPOINT, each --endpoint and --mirror); public mirrors that mtune
   * adds by itself are asked anonymously.
   */
  token: boolean
  /** Credentials for `url`, granted to its origin only (the hub token, when it was given one). */
  headers?: Record<string, string>
}

const unique = (xs: Array<string | undefined>) => [...new Set(xs.filter((x): x is string => Boolean(x)).map((x) => x.replace(/\/+$/, '')))]

/**
 * Where this source could come from: the source's default, HF_ENDPOINT / MODELSCOPE_ENDPOINT,
 * each --endpoint and --mirror, and the public mirrors; each resolved (within a time limit) so
 * that those that fail are known before anything is measured. The public mirrors are resolved
 * without the token: a gated or private repo then does not list them, which is right, since
 * the user never chose to trust them.
 */
export async function findCandidates(
  ref: SourceRef,
  options: {
    mirrors: string[]
    endpoints: string[]
    publicMirrors: boolean
    /** The files the pull is about, and where they go: the same plan on every endpoint. */
    resolve?: Pick<ResolveOptions, 'include' | 'exclude' | 'localDir'>
    env?: NodeJS.ProcessEnv
    dispatcher: Dispatcher
    signal?: AbortSignal
    timeoutMs?: number
  },
): Promise<Candidate[]> {
  const env = options.env ?? process.env
  // URL credentials are the URL's own (credentials.ts): each URL carries its own to its origin,
  // and a Hub file URL the Hub token, as in a plain pull (hub-files.ts).
  if (ref.kind === 'url') {
    // A --mirror that is the URL itself (or given twice) is one candidate, as a plain pull takes it (engine.ts).
    return [...new Set([ref.url, ...options.mirrors].map((u) => (URL.canParse(u) ? new URL(u).href : u)))].map((url) => {
      const headers = hubFileHeaders(url, env)
      return {label: shownUrl(url), url, ok: true, token: Boolean(headers), ...(headers ? {headers} : {})}
    })
  }
  const extra = [...options.endpoints, ...options.mirrors]
  const chosen =
    ref.kind === 'hf' ? unique(['https://huggingface.co', hfEndpoint(undefined, env), ...extra]) : ref.kind === 'modelscope' ? unique([modelscopeEndpoint(env), ...extra]) : []
  const added = ref.kind === 'ollama' || !options.publicMirrors ? [] : unique(publicMirrors(ref.kind, env)).filter((e) => !chosen.includes(e))
  const endpoints: Array<{endpoint?: string; anonymous: boolean}> =
    ref.kind === 'ollama' ? [{anonymous: false}] : [...chosen.map((endpoint) => ({endpoint, anonymous: false})), ...added.map((endpoint) => ({endpoint, anonymous: true}))]
  return Promise.all(
    endpoints.map(async ({endpoint, anonymous}): Promise<Candidate> => {
      const controller = new AbortController()
      const timer = setTimeout(() => controller.abort(), options.timeoutMs ?? 8_000)
      const onAbort = () => controller.abort()
      options.signal?.addEventListener('abort', onAbort, {once: true})
      const label = endpoint ?? `${ref.kind === 'ollama' ? `${ref.host}` : ''}`
      const token = Boolean(tokenFor(ref.kind, {anonymous, env}))
      try {
        const plan = await resolvePlan(ref, {...options.resolve, endpoint, anonymous, env}, {dispatcher: options.dispatcher, signal: controller.signal})
        const largest = [...plan.files].sort((a, b) => (b.size ?? 0) - (a.size ?? 0))[0]
        if (!largest) return {label, endpoint, ok: false, reason: 'no files', token}
        return {label, endpoint, url: largest.url, ok: true, plan, token, headers: plan.headers}
      } catch (error) {
        // Globs that match nothing match nothing anywhere: the user's mistake, said once.
        if (error instanceof MtuneError && error.exitCode === ExitCode.usage) throw error
        return {label, endpoint, ok: false, reason: controller.signal.aborted && !options.signal?.aborted ? 'no answer in time' : errorMessage(error), token}
      } finally {
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
      }
    }),
  )
}
