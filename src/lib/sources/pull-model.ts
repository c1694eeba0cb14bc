import {closeDispatcher, createDispatcher} from '../net/dispatcher.js'
import {DEFAULTS, type PullEvents} from '../transfer/pull-types.js'
import {resolveOrCached} from './hf-offline.js'
import type {Plan} from './plan.js'
import type {SourceRef} from './reference.js'
import type {ResolveOptions} from './resolve.js'
import {runPlan, type FileResult, type RunOptions} from './run-plan.js'
import {cacheForPlan, pullThroughCache} from './through-cache.js'

/** How `mtune pull hf://|ollama://|modelscope://` was asked to pull a model. */
export interface ModelPull {
  resolve: Pick<ResolveOptions, 'endpoint' | 'include' | 'exclude' | 'files' | 'localDir'>
  run: Omit<RunOptions, 'dispatcher'>
  /** An mtune cache (MTUNE_CACHE, --cache) to pull through; the origin stays the fallback. */
  cache?: string
  /** Resolve and show the plan, fetch nothing. */
  dryRun?: boolean
  /** Re-hash the files already present (found by size) first, so that bad ones are pulled again. */
  verify?: boolean
}

export interface ModelPulled {
  plan: Plan
  /** Absent on a dry run. */
  files?: FileResult[]
  /** From the first request to the last file in place. */
  seconds: number
  via: 'cache' | 'origin'
}

/**
 * The model's plan, resolved (offline from the cache where the hub cannot be reached), then
 * pulled, through the rack cache where one is set. The plan is handed to `onPlan` as soon as it
 * is known, before any byte is fetched.
 */
export async function pullModel(ref: Exclude<SourceRef, {kind: 'url'}>, o: ModelPull, events: PullEvents, onPlan: (plan: Plan) => void): Promise<ModelPulled> {
  const dispatcher = createDispatcher({stallTimeoutMs: o.run.stallTimeoutMs ?? DEFAULTS.stallTimeoutMs})
  try {
    const started = performance.now()
    const seconds = () => (performance.now() - started) / 1000
    const run = {...o.run, dispatcher}
    // A re-hash reads what is on disk against the hub's plan: no cache to fall back from.
    if (o.cache && !o.dryRun && !o.verify) {
      const {plan, files, via} = await pullThroughCache(ref, o.cache, o.resolve, run, events, onPlan)
      return {plan, files, seconds: seconds(), via}
    }
    const cache = await cacheForPlan(ref, o.cache, o.resolve.endpoint, dispatcher, events, o.run.signal)
    const plan = await resolveOrCached(ref, {...o.resolve, cache}, {dispatcher, signal: o.run.signal, warn: events.warn, debug: events.debug}, events)
    onPlan(plan)
    if (o.dryRun) return {plan, seconds: seconds(), via: 'origin'}
    if (o.verify) {
      const {rehashPresent} = await import('../verify/run.js')
      await rehashPresent(plan, o.run.signal, events)
    }
    return {plan, files: await runPlan(plan, run, events), seconds: seconds(), via: 'origin'}
  } finally {
    await closeDispatcher(dispatcher)
  }
}
