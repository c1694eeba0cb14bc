import type {Dispatcher} from 'undici'
import {ExitCode, MtuneError, errorMessage} from '../errors.js'
import {proxyConfig, proxyFor} from '../net/proxy-env.js'
import {redact} from '../net/request.js'
import {probeCache, type CacheUpstreams} from './cache-probe.js'
import type {PullEvents} from '../transfer/engine.js'
import type {Plan} from './plan.js'
import type {SourceRef} from './reference.js'
import {resolvePlan, type ResolveOptions} from './resolve.js'
import {runPlan, type FileResult, type RunOptions} from './run-plan.js'

/** Failures that asking the origin instead cannot help: Ctrl-C, bad input, the local disk, root. */
const final = (error: unknown) =>
  error instanceof MtuneError && [ExitCode.interrupted, 143, ExitCode.usage, ExitCode.localDisk, ExitCode.permission].includes(error.exitCode as never)

/** A hub's own verdict, passed on by the cache (not found, gated, token refused): the origin says the same. */
const hubVerdict = (error: unknown) => error instanceof MtuneError && error.exitCode === ExitCode.remote && !/HTTP 5\d\d|cannot reach|not answer/.test(error.message)

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
): Promise<Pulled> {
  const ctx = {dispatcher: run.dispatcher, signal: run.signal, warn: events.warn}
  // A rack cache reached through the site's proxy is a common reason it does not answer.
  const proxy = proxyFor(cache, proxyConfig())
  const viaProxy = proxy ? ` (through the proxy ${new URL(proxy).host}: add ${new URL(cache).hostname} to NO_PROXY)` : ''
  const direct = async (): Promise<Pulled> => {
    const plan = await resolvePlan(ref, resolve, ctx)
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
  const elsewhere = otherRegistry(ref, probe.upstreams)
  if (elsewhere) {
    events.info?.(`${theCache(cache)} ${elsewhere}`)
    return direct()
  }
  let plan: Plan
  try {
    plan = await resolvePlan(ref, {...resolve, cache}, ctx)
  } catch (error) {
    if (final(error) || hubVerdict(error)) throw error
    return fromOrigin(`failed (${errorMessage(error)})`)
  }
  onPlan(plan)
  try {
    return {plan, files: await runPlan(plan, run, events), via: 'cache'}
  } catch (error) {
    if (final(error) || run.signal?.aborted) throw error
    return fromOrigin(`failed during the pull (${errorMessage(error)}); what is on disk is kept`)
  }
}

/** The cache as messages name it: its URL without credentials or a trailing slash. */
const theCache = (cache: string) => `the cache at ${redact(cache).replace(/\/$/, '')}`

/** What a cache serves when its page does not say: `mtune cache serve`'s default upstream. */
const DEFAULT_OLLAMA_REGISTRY = 'https://registry.ollama.ai'

/**
 * Why the cache cannot serve `ref`, with what is done instead; undefined when it can. An Ollama
 * model's name includes its registry (ollama://hf.co/..., a private registry), and a cache serves
 * one: asked for another's model, it answered "not found", or with its own registry's model of
 * the same name, stored under the other registry's name. Hub mirrors (hf://, modelscope://) share
 * their hub's names, so they are left to the cache.
 */
export function otherRegistry(ref: Exclude<SourceRef, {kind: 'url'}>, upstreams: CacheUpstreams | undefined): string | undefined {
  if (ref.kind !== 'ollama') return undefined
  const serves = new URL(upstreams?.ollama ?? DEFAULT_OLLAMA_REGISTRY)
  if (serves.origin === new URL(`${ref.scheme}://${ref.host}`).origin) return undefined
  return `serves the Ollama registry ${serves.host}, not ${ref.host}: pulling from ${ref.host} directly`
}

/**
 * The cache a plan that is only shown or re-hashed (--dry-run, --verify) is resolved through:
 * `cache`, unless it serves another Ollama registry than `ref` names (then undefined, said).
 */
export async function cacheForPlan(
  ref: Exclude<SourceRef, {kind: 'url'}>,
  cache: string | undefined,
  dispatcher: Dispatcher,
  events: PullEvents,
  signal?: AbortSignal,
): Promise<string | undefined> {
  if (!cache || ref.kind !== 'ollama') return cache
  const probe = await probeCache(dispatcher, cache, {timeoutMs: 5_000, signal})
  const elsewhere = probe.mtune ? otherRegistry(ref, probe.upstreams) : undefined
  if (elsewhere) events.info?.(`${theCache(cache)} ${elsewhere}`)
  return elsewhere ? undefined : cache
}
