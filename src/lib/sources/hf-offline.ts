import {statSync} from 'node:fs'
import type {ApiContext} from './api.js'
import {ExitCode, MtuneError, errorMessage} from '../errors.js'
import {hfHubOffline} from '../env-settings.js'
import {hfCacheDir, hfSource} from './hf.js'
import {hubDown} from './api.js'
import type {Plan, PlannedFile} from './plan.js'
import type {PullEvents} from '../transfer/pull-types.js'
import type {SourceRef} from './reference.js'
import {resolvePlan, type ResolveOptions} from './resolve.js'
import {pathsOf, selector} from './select.js'

type HfRef = Extract<SourceRef, {kind: 'hf'}>

/**
 * A model source's plan, and for hf:// into the Hugging Face cache, the cache's own snapshot
 * when the Hub is not to be asked (HF_HUB_OFFLINE) or cannot be reached, as huggingface_hub's
 * snapshot_download answers then. Why: an init container or provisioning script runs
 * `mtune pull hf://...` on every start; on a cluster with no route to the Hub it failed (exit 3)
 * with the model complete on its volume, where `hf download` would have carried on.
 */
export async function resolveOrCached(ref: Exclude<SourceRef, {kind: 'url'}>, options: ResolveOptions, ctx: Omit<ApiContext, 'headers'>, events: PullEvents): Promise<Plan> {
  const env = options.env ?? process.env
  const hf = ref.kind === 'hf' && !options.localDir && !options.cache ? ref : undefined
  const fromDisk = hf && ((why: string) => cachedSnapshot(hf, options, env, why))
  if (fromDisk && hfHubOffline(env)) {
    const cached = await fromDisk('HF_HUB_OFFLINE is set; unset it to fetch them from the Hub')
    if (!cached) {
      throw new MtuneError('hf-offline', `HF_HUB_OFFLINE is set and the Hugging Face cache (${hfCacheDir(env)}) has no complete snapshot of ${hfSource(hf)}: unset HF_HUB_OFFLINE to pull it`, ExitCode.remote)
    }
    events.info?.(`HF_HUB_OFFLINE is set: the cache's snapshot (${cached.version}) is taken as it is, the Hub not asked, as huggingface_hub does`)
    return cached
  }
  try {
    return await resolvePlan(ref, options, ctx)
  } catch (error) {
    if (!fromDisk || !hubUnusable(error)) throw error
    const cached = await fromDisk(`the Hub did not answer (${errorMessage(error)}); run the pull again when it does`)
    if (!cached) throw error
    events.warn?.(`${errorMessage(error)}: the cache's snapshot of ${hfSource(hf)} (${cached.version}) is taken as it is, as huggingface_hub does offline`)
    return cached
  }
}

/**
 * The Hub unreachable, failing (5xx) or still rate limiting after the waits: where
 * huggingface_hub falls back to its cache. Not a refusal (gated, not found, a bad token), which
 * the cache cannot answer for.
 */
const hubUnusable = (error: unknown): boolean => hubDown(error) || (error instanceof MtuneError && error.code === 'hf-rate-limited')

/**
 * The snapshot the revision names in the cache, its linked files (those the selection takes),
 * all present: undefined when there is none, a link is dangling, or the selection takes none.
 */
async function cachedSnapshot(ref: HfRef, options: ResolveOptions, env: NodeJS.ProcessEnv, cannotFetch: string): Promise<Plan | undefined> {
  // Loaded here: verify reads the cache this way too, and imports this module's neighbours.
  const {cachedCommit, hfFromDisk} = await import('../verify/expect.js')
  let disk
  try {
    disk = hfFromDisk(ref, env)
  } catch {
    return undefined
  }
  const commit = cachedCommit(disk.root, ref.revision)
  if (!commit || disk.problems.some((p) => p.kind === 'missing' || p.kind === 'dangling')) return undefined
  const take = selector({...options, paths: pathsOf(ref, options.files), quant: ref.quant})
  const files: PlannedFile[] = disk.files
    .filter((f) => f.link !== undefined && take(f.name))
    .map((f) => ({name: f.name, url: '', size: statSync(f.path).size, sha256: f.sha256, gitSha1: f.gitSha1, dest: f.path, present: true}))
  if (files.length === 0) return undefined
  return {source: hfSource(ref), version: `commit ${commit.slice(0, 12)}, from the cache`, root: disk.root, layout: 'hf-cache', files, headers: {}, notes: [], finish: async () => {}, cannotFetch}
}
