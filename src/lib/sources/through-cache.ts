import type {Dispatcher} from 'undici'
import {ExitCode, MtuneError, errorMessage} from '../errors.js'
import {proxyConfig, proxyFor} from '../net/proxy-env.js'
import {redact} from '../net/request.js'
import {DEFAULT_UPSTREAMS} from '../cache/options.js'
import {cacheEndpoints} from './cache-endpoints.js'
import {hubDown} from './api.js'
import {probeCache, type CacheUpstreams} from './cache-probe.js'
import type {PullEvents} from '../transfer/engine.js'
import type {Plan} from './plan.js'
import type {SourceRef} from './reference.js'
import {resolvePlan, type ResolveOptions} from './resolve.js'
import {runPlan, type FileResult, type RunOptions} from './run-plan.js'

/** Failures that asking the origin instead cannot help: Ctrl-C, bad input, the local disk, root. */
export const cacheCannotHelp = (error: unknown) =>
  error instanceof MtuneError && [ExitCode.interrupted, 143, ExitCode.usage, ExitCode.localDisk, ExitCode.permission].includes(error.exitCode as never)

/** A hub's own verdict, passed on by the cache (not found, gated, token refused): the origin says the same. */
const hubVerdict = (error: unknown) => error instanceof MtuneError && error.exitCode === ExitCode.remote && !hubDown(error)

export interface Pulled {
  plan: Plan
  files: FileResult[]
  /** Where the bytes came from in the end. */
  via: 'cache' | 'origin'
}

/**
 * A model source through an mtune cache, with the origin as the fallback: a cache that does not
 * answer, or fails the pull, is left for the origin with one warning, keeping what is on disk
 * (files land in the same places either way). Every file is verified against the hub's digests
 * whichever way it came, so a broken cache cannot put a bad file in place.
 */
export async function pullThroughCache(
  ref: Exclude<SourceRef, {kind: 'url'}>,
  cache: string,
  resolve: ResolveOptions,
  run: RunOptions,
  events: PullEvents,
  onPlan: (plan: Plan) => void = () => {},
  /** The part of the plan to pull (verify --repair: the bad files only), whichever way it was resolved. */
  narrow: (plan: Plan) => Plan = (plan) => plan,
): Promise<Pulled> {
  const ctx = {dispatcher: run.dispatcher, signal: run.signal, warn: events.warn, debug: events.debug}
  // A rack cache reached through the site's proxy is a common reason it does not answer.
  const proxy = proxyFor(cache, proxyConfig())
  const viaProxy = proxy ? ` (through the proxy ${new URL(proxy).host}: add ${new URL(cache).hostname} to NO_PROXY)` : ''
  const direct = async (): Promise<Pulled> => {
    const plan = narrow(await resolvePlan(ref, resolve, ctx))
    onPlan(plan)
    return {plan, files: await runPlan(plan, run, events), via: 'origin'}
  }
  const fromOrigin = async (why: string): Promise<Pulled> => {
    events.warn?.(`${theCache(cache)} ${why}${viaProxy}: pulling from the origin instead`)
    return direct()
  }
  const probe = await probeCache(run.dispatcher, cache, {timeoutMs: 5_000, signal: run.signal})
  if (!probe.mtune) {
    if (run.signal?.aborted) throw new MtuneError('interrupted', 'interrupted', ExitCode.interrupted)
    return fromOrigin('does not answer')
  }
  const elsewhere = otherHub(ref, cache, probe.upstreams, resolve.endpoint)
  if (elsewhere) {
    events.info?.(`${theCache(cache)} ${elsewhere}`)
    return direct()
  }
  let plan: Plan
  try {
    plan = narrow(await resolvePlan(ref, {...resolve, cache}, ctx))
  } catch (error) {
    if (cacheCannotHelp(error) || hubVerdict(error)) throw error
    return fromOrigin(`failed (${errorMessage(error)})`)
  }
  onPlan(plan)
  try {
    return {plan, files: await runPlan(plan, run, events), via: 'cache'}
  } catch (error) {
    if (cacheCannotHelp(error) || run.signal?.aborted) throw error
    return fromOrigin(`failed during the pull (${errorMessage(error)}); what is on disk is kept`)
  }
}

/** The cache as messages name it: its URL without credentials or a trailing slash. */
export const theCache = (cache: string) => `the cache at ${redact(cache).replace(/\/$/, '')}`

/**
 * Why the cache cannot serve `ref`, with what is done instead; undefined when it can. A cache
 * serves one hub of each kind (serve's --hf-upstream and the rest; its page lists them, and one
 * that does not serves the defaults). An Ollama model's name includes its registry
 * (ollama://hf.co/..., a private registry), so another registry's model goes there directly:
 * asked for it, the cache answered "not found", or worse with its own registry's model of the
 * same name, stored under the other's name. A Hugging Face or ModelScope model goes to the hub
 * an --endpoint names for this command (a company's own hub); HF_ENDPOINT and
 * MODELSCOPE_ENDPOINT are the fleet's setting, often a mirror of the same hub, and stay the
 * fallback behind the cache. The cache itself, as an endpoint, is its hub.
 */
export function otherHub(ref: Exclude<SourceRef, {kind: 'url'}>, cache: string, upstreams: CacheUpstreams | undefined, endpoint?: string): string | undefined {
  const other = hubMismatch(ref, cache, upstreams, endpoint)
  return other && `${other.mismatch}: pulling from ${other.host} directly${other.hint}`
}

/** Why the cache cannot serve `ref` (otherHub), in parts a caller words its own way. */
export function hubMismatch(
  ref: Exclude<SourceRef, {kind: 'url'}>,
  cache: string,
  upstreams: CacheUpstreams | undefined,
  endpoint?: string,
): {mismatch: string; host: string; hint: string} | undefined {
  const named = ref.kind === 'ollama' ? `${ref.scheme}://${ref.host}` : endpoint
  if (named === undefined) return undefined
  const serves = upstreams?.[ref.kind] ?? DEFAULT_UPSTREAMS[ref.kind]
  const itself = ref.kind === 'ollama' ? [] : [cache, cacheEndpoints(cache)[ref.kind]]
  if ([serves, ...itself].some((hub) => sameHub(hub, named))) return undefined
  const what = {hf: 'Hugging Face hub', ollama: 'Ollama registry', modelscope: 'ModelScope hub'}[ref.kind]
  const host = new URL(named).host
  // The same host on another scheme or path (an Ollama registry over plain HTTP, asked without
  // --insecure) is told apart by the whole URL: "serves 10.0.0.5:5000, not 10.0.0.5:5000" was not.
  const sameHost = new URL(serves).host.toLowerCase() === host.toLowerCase()
  const shown = (url: string) => (sameHost ? redact(url).replace(/\/+$/, '') : new URL(url).host)
  const hint = sameHost && ref.kind === 'ollama' && new URL(serves).protocol === 'http:' ? ' (--insecure names the one it serves)' : ''
  return {mismatch: `serves the ${what} ${shown(serves)}, not ${shown(named)}`, host, hint}
}

/** One hub: the same origin and path, whatever the case, a trailing slash or a www. in front. */
function sameHub(a: string, b: string): boolean {
  const key = (u: string) => {
    const url = new URL(u)
    return `${url.protocol}//${url.host.toLowerCase().replace(/^www\./, '')}${url.pathname.replace(/\/+$/, '')}`
  }
  return URL.canParse(a) && URL.canParse(b) && key(a) === key(b)
}

/**
 * The cache a plan that is only shown or re-hashed (--dry-run, --verify) is resolved through:
 * `cache`, unless it serves another hub than the one `ref` is named on (then undefined, said).
 */
export async function cacheForPlan(
  ref: Exclude<SourceRef, {kind: 'url'}>,
  cache: string | undefined,
  endpoint: string | undefined,
  dispatcher: Dispatcher,
  events: PullEvents,
  signal?: AbortSignal,
): Promise<string | undefined> {
  // Only a registry in the name, or an --endpoint, can name another hub: else nothing to ask.
  if (!cache || (ref.kind !== 'ollama' && endpoint === undefined)) return cache
  const probe = await probeCache(dispatcher, cache, {timeoutMs: 5_000, signal})
  const elsewhere = probe.mtune ? otherHub(ref, cache, probe.upstreams, endpoint) : undefined
  if (elsewhere) events.info?.(`${theCache(cache)} ${elsewhere}`)
  return elsewhere ? undefined : cache
}

/**
 * A plan resolved through the cache where one is set and serves this hub, else from the hub: for
 * commands that only read a listing (verify), whose hosts may reach the hub only through the rack's
 * cache. A cache that fails is left for the hub with one warning; the hub's own verdicts stand.
 */
export async function resolveThroughCache(
  ref: Exclude<SourceRef, {kind: 'url'}>,
  resolve: ResolveOptions,
  cache: string | undefined,
  ctx: {dispatcher: Dispatcher; signal?: AbortSignal; events: PullEvents},
): Promise<Plan> {
  const api = {dispatcher: ctx.dispatcher, signal: ctx.signal, warn: ctx.events.warn, debug: ctx.events.debug}
  const via = await cacheForPlan(ref, cache, resolve.endpoint, ctx.dispatcher, ctx.events, ctx.signal)
  if (via) {
    try {
      return await resolvePlan(ref, {...resolve, cache: via}, api)
    } catch (error) {
      if (cacheCannotHelp(error) || hubVerdict(error)) throw error
      ctx.events.warn?.(`${theCache(via)} failed (${errorMessage(error)}): asking the hub`)
    }
  }
  return resolvePlan(ref, resolve, api)
}
