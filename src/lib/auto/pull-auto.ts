import {stat} from 'node:fs/promises'
import type {Dispatcher} from 'undici'
import {dirname, resolve} from 'node:path'
import {createDispatcher} from '../net/dispatcher.js'
import {shownUrl} from '../net/credentials.js'
import type {Plan} from '../sources/plan.js'
import type {SourceRef} from '../sources/reference.js'
import {pulledBeforeOf} from '../sources/pull-url.js'
import {runPlan, type FileResult} from '../sources/run-plan.js'
import type {SystemReader} from '../system/reader.js'
import {pull, type PullEvents, type PullResult} from '../transfer/engine.js'
import {fileWriter} from '../tune/apply.js'
import {tune, type TuneReport} from '../tune/run.js'
import {rememberPull} from '../verify/pull-record.js'
import {findCandidates} from './candidates.js'
import {decideAuto, type AutoDecision} from './decide.js'

export interface AutoOptions {
  source: string
  mirrors: string[]
  endpoints: string[]
  /** Model sources: --include/--exclude and --local-dir, as a plain pull takes them. */
  include?: string[]
  exclude?: string[]
  /** Paths in the repo named after the source. */
  files?: string[]
  localDir?: string
  /**
   * URLs: an mtune cache (MTUNE_CACHE, --cache). A URL under one of its --origin mirrors has a
   * second place to come from, the cache, measured beside the others.
   */
  urlCache?: string
  /** Model sources: re-hash the files already present first (pull --verify). */
  verify?: boolean
  publicMirrors: boolean
  budgetMs: number
  output?: string
  sha256?: string
  force?: boolean
  /** A shorter file at the destination is another tool's download cut short: taken over (PullOptions.continue). */
  continue?: boolean
  tune?: boolean
  dryRun?: boolean
  maxConnections?: number
  stallTimeoutMs: number
  maxRetries: number
  limitRate?: number
  /** Fetch threads for big files (PullOptions.threads). */
  threads?: number
  signal?: AbortSignal
  uid: number
  /** Shown before anything is downloaded. */
  onDecision?(decision: AutoDecision): void
  onTune?(report: TuneReport): void
}

export interface AutoResult {
  decision: AutoDecision
  dryRun: boolean
  tuning?: TuneReport
  result?: PullResult
  files?: FileResult[]
  /** For model sources: the plan pulled, and how long it took. */
  plan?: Plan
  seconds?: number
}

/** Where a URL's file would go, for the preflight: -o's directory, or the current one. */
async function outputDir(output: string | undefined): Promise<string> {
  if (!output) return process.cwd()
  const info = await stat(output).catch(() => undefined)
  return info?.isDirectory() || output.endsWith('/') ? resolve(output) : dirname(resolve(output))
}

/** The cache's form of a URL under one of its origins, as a candidate (said), or none. */
async function cacheOfUrl(ref: SourceRef, options: AutoOptions, dispatcher: Dispatcher, events: PullEvents): Promise<string[]> {
  if (ref.kind !== 'url' || !options.urlCache) return []
  const {routeThroughCache} = await import('../sources/url-through-cache.js')
  const {theCache} = await import('../sources/through-cache.js')
  const {answers, routed} = await routeThroughCache(ref.url, options.urlCache, dispatcher, options.signal)
  if (!answers) events.warn?.(`${theCache(options.urlCache)} does not answer: only the URL${options.mirrors.length ? ' and --mirror' : ''} measured`)
  else if (routed) events.info?.(`${theCache(options.urlCache)} serves this URL (its origin ${routed.name}): measured as a candidate`)
  return routed ? [routed.url] : []
}

/** pull --auto: check the machine, measure the mirrors, decide, say why, (tune,) and pull. */
export async function pullAuto(ref: SourceRef, options: AutoOptions, r: SystemReader, events: PullEvents): Promise<AutoResult> {
  const dispatcher = createDispatcher({stallTimeoutMs: options.stallTimeoutMs})
  try {
    const resolve = {include: options.include, exclude: options.exclude, files: options.files, localDir: options.localDir}
    const mirrors = [...(await cacheOfUrl(ref, options, dispatcher, events)), ...options.mirrors]
    const candidates = await findCandidates(ref, {mirrors, endpoints: options.endpoints, publicMirrors: options.publicMirrors, resolve, dispatcher, signal: options.signal})
    const decision = await decideAuto(options.source, candidates, {path: await outputDir(options.output), budgetMs: options.budgetMs, signal: options.signal, progress: events.info}, r)
    options.onDecision?.(decision)
    // What the chosen plan has to say (a GGUF repo's variants, whose store it goes into), as a plain pull says it.
    const chosenPlan = decision.chosen && candidates.find((c) => c.url !== undefined && shownUrl(c.url) === decision.chosen!.url)?.plan
    for (const note of chosenPlan?.notes ?? []) events.info?.(note)
    if (options.dryRun) return {decision, dryRun: true}
    let tuning: TuneReport | undefined
    if (options.tune) {
      tuning = await tune(r, fileWriter(r), {path: decision.path, apply: true, uid: options.uid})
      options.onTune?.(tuning)
    }
    // The decision names mirrors as shown; the candidates keep the URLs to use (credentials and all).
    const candidateFor = (url: string) => candidates.find((c) => c.url !== undefined && shownUrl(c.url) === url)!
    const common = {stallTimeoutMs: options.stallTimeoutMs, maxRetries: options.maxRetries, limitRate: options.limitRate, threads: options.threads, signal: options.signal}
    if (ref.kind === 'url') {
      const result = await pull(
        {
          url: candidateFor(decision.chosen.url).url!,
          headers: candidateFor(decision.chosen.url).headers,
          mirrors: decision.fallbacks.map((f) => candidateFor(f.url).url!),
          output: options.output,
          sha256: options.sha256,
          force: options.force,
          continue: options.continue,
          // A re-run keeps the file an earlier pull of this URL put in place, whichever mirror either chose.
          pulledBefore: pulledBeforeOf(ref.url),
          connections: decision.connections,
          maxConnections: options.maxConnections,
          chunkSize: decision.chunkSize,
          ...common,
        },
        events,
      )
      // Recorded under the URL given, not the mirror chosen: what verify and a re-run know it by.
      rememberPull(result, ref.url, events.debug)
      return {decision, dryRun: false, tuning, result}
    }
    const started = performance.now()
    const chosen = candidateFor(decision.chosen.url).plan!
    const others = decision.fallbacks.map((f) => candidateFor(f.url).plan).filter((p) => p !== undefined)
    if (options.verify) {
      const {rehashPresent} = await import('../verify/run.js')
      await rehashPresent(chosen, options.signal, events)
    }
    const files = await runPlan(
      chosen,
      {
        dispatcher,
        maxConnections: options.maxConnections,
        connections: decision.connections,
        chunkSize: decision.chunkSize,
        // The same file on the other endpoints: used if faster, taken over if the chosen one fails.
        mirrorsFor: (file) => others.map((p) => p.files.find((f) => f.name === file.name)?.url).filter((u): u is string => Boolean(u)),
        ...common,
      },
      events,
    )
    return {decision, dryRun: false, tuning, files, plan: chosen, seconds: (performance.now() - started) / 1000}
  } finally {
    await dispatcher.destroy().catch(() => {})
  }
}
