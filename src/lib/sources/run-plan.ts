import {statfs} from 'node:fs/promises'
import {dirname} from 'node:path'
import type {Dispatcher} from 'undici'
import {ExitCode, MtuneError, errorMessage} from '../errors.js'
import {formatBytes} from '../units.js'
import {dirError, isFsRefusal, makeDirs, nearestExisting} from '../fs-dirs.js'
import {ConnectionBudget} from '../transfer/connection-budget.js'
import {SPACE_HEADROOM} from '../transfer/destination.js'
import {TokenBucket} from '../transfer/token-bucket.js'
import {pull, type PullEvents, type PullResult} from '../transfer/engine.js'
import type {Elsewhere} from '../transfer/pull-types.js'
import {verifierFor} from './file-check.js'
import {stillToWrite} from './held.js'
import {PARALLEL_FILES, type Plan, type PlannedFile} from './plan.js'
import {ProgressSum} from './progress-sum.js'
import {runInSlots} from './file-slots.js'
import {giveToOwner, ownerWords, storeOwner} from './store-owner.js'
import {validatorsOf} from '../transfer/previous-pull.js'
import {saysSlowDiskOnce} from '../transfer/write-gate.js'

export interface RunOptions {
  dispatcher: Dispatcher
  /** Connections for the whole plan, shared by the files pulled at once. */
  maxConnections?: number
  /** Big files pulled at once; small ones twice as many (file-slots.ts). */
  parallelFiles?: number
  stallTimeoutMs?: number
  maxRetries?: number
  limitRate?: number
  /** Fetch threads for big files (PullOptions.threads). */
  threads?: number
  signal?: AbortSignal
  /** Connections each file starts with (default 16, within the budget). */
  connections?: number
  chunkSize?: number
  /** Other URLs of the same file (the same repo on other endpoints): failover without refetching. */
  mirrorsFor?: (file: PlannedFile) => string[]
  /**
   * A file that fails on its own (its server, its digest) does not stop the others; the failures
   * are said together at the end. For lists of unrelated files (pull -i), as aria2c -i and wget -i
   * go on; a model stays one unit.
   */
  keepGoing?: boolean
}

export interface FileResult {
  name: string
  path: string
  size: number
  sha256?: string
  /** The server's validators, as it answered (a list's re-run tells an unchanged file by them). */
  etag?: string
  lastModified?: string
  skipped: boolean
  seconds?: number
  bytesFetched?: number
  /** Bytes an earlier pull (or another client) had already written, which this one kept. */
  resumedBytes?: number
  /** Put in place by another mtune that this one waited on (PullResult.pulledByAnother). */
  pulledByAnother?: boolean
}

/** How to send each layout's files elsewhere: the setting that moves them (a URL's is -o). */
const ELSEWHERE: Record<Plan['layout'], Elsewhere> = {
  'hf-cache': {
    full: 'pull it onto another disk: HF_HUB_CACHE=DIR (or HF_HOME), or --local-dir DIR',
    unwritable: 'set HF_HOME (or HF_HUB_CACHE) to a directory you can write, or pull with --local-dir DIR',
  },
  ollama: {full: 'pull it onto another disk: OLLAMA_MODELS=DIR', unwritable: 'set OLLAMA_MODELS to a directory you can write'},
  'modelscope-cache': {
    full: 'pull it onto another disk: MODELSCOPE_CACHE=DIR, or --local-dir DIR',
    unwritable: 'set MODELSCOPE_CACHE to a directory you can write, or pull with --local-dir DIR',
  },
  directory: {full: 'pull it onto another disk with another --local-dir', unwritable: 'choose a --local-dir you can write'},
}

const elsewhereFor = (plan: Pick<Plan, 'layout' | 'elsewhere'>): Elsewhere => plan.elsewhere ?? ELSEWHERE[plan.layout]

/**
 * The missing files of a plan against the free space where they go, before any of them starts:
 * otherwise the first file to run out says "7 B still needed", for a model that needed gigabytes.
 * Bytes already in part files (an interrupted pull, or another client's partial download a pull
 * takes over) are not needed again (held.ts).
 */
async function checkPlanSpace(plan: Plan, files: PlannedFile[]): Promise<void> {
  const there = nearestExisting(plan.root).found
  const fs = there?.directory ? await statfs(there.path).catch(() => undefined) : undefined
  // No blocks at all: /proc, /sys, where nothing can be made; making the folders says so.
  if (!fs || fs.blocks === 0 || files.some((f) => f.size === undefined)) return
  const short = spaceShortfall(plan, stillToWrite(files), fs.bavail * fs.bsize)
  if (short) throw short
}

/** Pure: the line for a plan whose missing bytes do not fit in what is free, with its layout's way elsewhere. */
export function spaceShortfall(plan: Pick<Plan, 'root' | 'source' | 'layout' | 'elsewhere'>, needed: number, free: number): MtuneError | undefined {
  if (needed + SPACE_HEADROOM <= free) return undefined
  return new MtuneError('no-space', `not enough space in ${plan.root} for ${plan.source}: ${formatBytes(needed)} still needed, ${formatBytes(free)} free; free some space, or ${elsewhereFor(plan).full}`, ExitCode.localDisk)
}

/** A directory of the plan's layout, or the line that says why not and which setting moves it. */
const makeDirsFor = (plan: Plan, dir: string) => makeDirs(dir).catch((error: unknown) => Promise.reject(dirError(error, elsewhereFor(plan).unwritable)))

/**
 * Pull every missing file of a plan, several at once under one connection budget and one
 * progress display; then let the plan finish its layout. An interrupted plan resumes file by
 * file (present files are skipped) and within files (each file's journal).
 */
export async function runPlan(plan: Plan, options: RunOptions, events: PullEvents = {}): Promise<FileResult[]> {
  const results: FileResult[] = plan.files
    .filter((f) => f.present)
    .map((f) => ({name: f.name, path: f.dest, size: f.size ?? 0, sha256: f.sha256, skipped: true}))
  // Two names with the same content share one blob: fetch it once.
  const byDest = new Map<string, PlannedFile>()
  for (const f of plan.files) if (!f.present && !byDest.has(f.dest)) byDest.set(f.dest, f)
  const queue = [...byDest.values()].sort((a, b) => (b.size ?? 0) - (a.size ?? 0))
  if (queue.length > 0 && plan.cannotFetch) {
    throw new MtuneError('cannot-fetch', `${queue.map((f) => f.name).join(', ')} cannot be pulled again: ${plan.cannotFetch}`, ExitCode.integrity)
  }
  // Judged before anything is made there: root writing where another user owns the place.
  const owner = storeOwner(plan.root)
  try {
    return await pullPlanFiles(plan, queue, results, options, events)
  } finally {
    const changed = owner ? giveToOwner(owner, plan.root) : 0
    if (owner && changed) events.info?.(`written as root where ${ownerWords(owner.uid)} owns ${owner.top}: what this pull made there is that user's`)
  }
}

/** The missing files of a plan (`queue`), then its links, refs or manifest. */
async function pullPlanFiles(plan: Plan, queue: PlannedFile[], results: FileResult[], options: RunOptions, events: PullEvents): Promise<FileResult[]> {
  const budget = new ConnectionBudget(options.maxConnections ?? 64)
  // --limit-rate caps the whole model, as it does a single file: one bucket for the files at once.
  const limiter = options.limitRate ? new TokenBucket(options.limitRate) : undefined
  // The space first, on the nearest folder there is: a model that does not fit leaves nothing made.
  await checkPlanSpace(plan, queue)
  // Made before any request: a cache that cannot be created is said as such, with the setting that moves it.
  if (queue.length > 0) await makeDirsFor(plan, plan.root)
  const abort = new AbortController()
  const onAbort = () => abort.abort()
  options.signal?.addEventListener('abort', onAbort, {once: true})
  const progress = new ProgressSum(queue, events)
  let failure: unknown
  const failed: Array<{file: PlannedFile; error: MtuneError}> = []

  // Ranks of a job pulling one model wait on each other file by file: said once per mtune waited on.
  const waitedOn = new Set<string>()
  const waiting: PullEvents['waiting'] = (holder) => {
    // One not known by name (its lock unreadable at that moment) is likely one already said.
    if (holder === undefined ? waitedOn.size > 0 : waitedOn.has(holder)) return
    waitedOn.add(holder ?? '')
    events.info?.(`another mtune${holder ? ` (${holder})` : ''} is pulling files of ${plan.source}: waiting for each of those, and taking it from that pull when it is done`)
  }
  // Files pulled side by side write to one disk: when it is slower than the network, said once.
  const slowDisk = saysSlowDiskOnce(events.info)
  const pullNext = async (file: PlannedFile) => {
    try {
      progress.begin(file)
      const r = await pullOne(file, plan, options, {budget, limiter, waiting, slowDisk}, abort.signal, progress, events)
      progress.end(file, r.size, r.alreadyComplete ? 0 : r.size - r.resumedBytes)
      // Found complete when its turn came (another pull put it there after the plan was made): present.
      const present = r.alreadyComplete && !r.pulledByAnother
      results.push({name: file.name, path: file.dest, size: r.size, sha256: r.sha256, ...validatorsOf(r), skipped: present, seconds: r.seconds, bytesFetched: r.bytesFetched, resumedBytes: present ? 0 : r.resumedBytes, ...(r.pulledByAnother ? {pulledByAnother: true} : {})})
      return r.size
    } catch (error) {
      if (options.keepGoing && fileOwn(error) && !abort.signal.aborted) {
        failed.push({file, error})
        progress.drop(file)
        events.warn?.(`${error.message}; going on with the other files`)
        return undefined
      }
      failure ??= error
      abort.abort()
      return undefined
    }
  }
  try {
    await runInSlots(queue, options.parallelFiles ?? PARALLEL_FILES, pullNext, () => failure !== undefined)
  } finally {
    options.signal?.removeEventListener('abort', onAbort)
    progress.stop()
  }
  if (failure) throw failure
  if (failed.length) {
    // In the list's order, whichever finished first: the exit code is the first failed file's.
    const order = (f: PlannedFile) => plan.files.indexOf(f)
    throw someFailed(failed.sort((a, b) => order(a.file) - order(b.file)), results)
  }
  // Links, refs, a manifest: a cache this user cannot write is said as such, with the setting that moves it.
  await plan.finish(plan.files).catch((error: unknown) => Promise.reject(isFsRefusal(error) ? dirError(error, elsewhereFor(plan).unwritable, 'write') : error))
  return results
}

/** A failure of one file alone (its server, its digest, its name), not of the disk or the run (Ctrl-C). */
function fileOwn(error: unknown): error is MtuneError {
  return error instanceof MtuneError && error.exitCode !== ExitCode.localDisk && error.exitCode !== ExitCode.interrupted && error.exitCode !== 143
}

/**
 * The files that failed, in one line, with the first one's exit code; those pulled are in place.
 * With --json, the error document also gives each file's result and each failure, as the
 * document of a pull that succeeded gives its results: a script learns which to retry.
 */
function someFailed(failed: Array<{file: PlannedFile; error: MtuneError}>, results: FileResult[]): MtuneError {
  const errors = failed.map((f) => f.error)
  const pulled = results.filter((r) => !r.skipped).length
  const shown = errors.slice(0, 3).map((e) => e.message)
  const more = errors.length > 3 ? `; and ${errors.length - 3} more` : ''
  const n = errors.length
  return new MtuneError(
    errors[0].code,
    `${n} file${n === 1 ? '' : 's'} failed${pulled ? ` (${pulled} pulled and in place)` : ''}: ${shown.join('; ')}${more}`,
    errors[0].exitCode,
    {
      cause: errors[0],
      details: {
        results,
        failed: failed.map(({file, error}) => ({name: file.name, path: file.dest, url: file.url, code: error.code, message: error.message, exitCode: error.exitCode})),
      },
    },
  )
}

async function pullOne(
  file: PlannedFile,
  plan: Plan,
  options: RunOptions,
  shared: {budget: ConnectionBudget; limiter?: TokenBucket; waiting: PullEvents['waiting']; slowDisk: PullEvents['slowDisk']},
  signal: AbortSignal,
  progress: ProgressSum,
  events: PullEvents,
): Promise<PullResult> {
  const verify = verifierFor(file)
  const dirs = [dirname(file.dest), ...(file.partPath ? [dirname(file.partPath)] : [])]
  for (const dir of dirs) await makeDirsFor(plan, dir)
  try {
    return await pull(
      {
        url: file.url,
        output: file.dest,
        partPath: file.partPath,
        sha256: file.sha256,
        verify: verify && ((partPath) => verify(partPath)),
        headers: file.headers ?? plan.headers,
        elsewhere: elsewhereFor(plan),
        adopt: file.adopt && {...file.adopt, size: file.size},
        force: true,
        budget: shared.budget,
        dispatcher: options.dispatcher,
        connections: Math.min(options.connections ?? 16, shared.budget.max),
        chunkSize: options.chunkSize,
        mirrors: options.mirrorsFor?.(file),
        maxConnections: shared.budget.max,
        stallTimeoutMs: options.stallTimeoutMs,
        maxRetries: options.maxRetries,
        limitRate: options.limitRate,
        limiter: shared.limiter,
        threads: options.threads,
        signal,
      },
      {info: events.info, warn: (m) => events.warn?.(`${file.name}: ${m}`), debug: events.debug, progress: (p) => progress.update(file, p), waiting: shared.waiting, slowDisk: shared.slowDisk},
    )
  } catch (error) {
    if (error instanceof MtuneError && !error.message.startsWith(file.name)) {
      throw new MtuneError(error.code, `${file.name}: ${error.message}`, error.exitCode, {cause: error})
    }
    throw error instanceof MtuneError ? error : new Error(`${file.name}: ${errorMessage(error)}`, {cause: error})
  }
}
