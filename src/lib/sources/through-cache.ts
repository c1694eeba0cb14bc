import {ExitCode, MtuneError, errorMessage} from '../errors.js'
import {proxyConfig, proxyFor} from '../net/proxy-env.js'
import {redact} from '../net/request.js'
import {probeCache} from './cache-probe.js'
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
  const fromOrigin = async (why: string): Promise<Pulled> => {
    events.warn?.(`the cache at ${redact(cache).replace(/\/$/, '')} ${why}${viaProxy}: pulling from the origin instead`)
    const plan = await resolvePlan(ref, resolve, ctx)
    onPlan(plan)
    return {plan, files: await runPlan(plan, run, events), via: 'origin'}
  }
  if (!(await probeCache(run.dispatcher, cache, {timeoutMs: 5_000, signal: run.signal})).mtune) {
    if (run.signal?.aborted) throw new MtuneError('interrupted', 'interrupted', ExitCode.interrupted)
    return fromOrigin('does not answer')
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
