import {existsSync, lstatSync, readlinkSync, rmSync, statSync} from 'node:fs'
import {dirname, resolve} from 'node:path'
import type {Dispatcher} from 'undici'
import {ExitCode, MtuneError, errorMessage} from '../errors.js'
import type {Plan} from '../sources/plan.js'
import type {SourceRef} from '../sources/reference.js'
import {hfHubOffline} from '../env-settings.js'
import type {ResolveOptions} from '../sources/resolve.js'
import {pullThroughCache, resolveThroughCache} from '../sources/through-cache.js'
import {redact} from '../net/request.js'
import {choosesFiles, pathsOf} from '../sources/select.js'
import {runPlan} from '../sources/run-plan.js'
import type {PullEvents} from '../transfer/engine.js'
import {sortOutAbsent, sortOutCut} from './absent.js'
import {plainFile, plainFiles} from './plain-file.js'
import {leftBad, pullAgain} from './pull-again.js'
import {cachedCommit, expectedOf, fromPlan, hfFromDisk, hfRepoDir, modelscopeSnapshot, ollamaFromDisk, type Expected, type Expectations, type Problem} from './expect.js'
import {hashFiles} from './hash-pool.js'
import {algorithmFor, intact, isBad, judge, summarize, type FileVerdict, type Summary} from './judge.js'

export interface VerifyOptions {
  sha256?: string
  /** Several PATHs (a shell's glob): each against its own digest. */
  paths?: string[]
  /** hf:// and modelscope://: the files (paths in the repo) named after the source. */
  files?: string[]
  /** Which files of the repo are expected (as pull's): with them, an absent file is missing. */
  include?: string[]
  exclude?: string[]
  revision?: string
  localDir?: string
  endpoint?: string
  repair?: boolean
  /** An mtune cache (MTUNE_CACHE, --cache): the hub's listing and --repair's files come through it, the hub staying the fallback. */
  cache?: string
  /** Ask the hub for its listing (default): without it, only what the disk itself says is checked. */
  online?: boolean
  dispatcher: Dispatcher
  signal?: AbortSignal
  events?: PullEvents
  /** Bytes hashed so far, of how many. */
  onProgress?(done: number, total: number): void
  workers?: number
}

export interface VerifyReport {
  target: string
  kind: Expectations['kind']
  against: Expectations['against']
  checksumList?: string
  root: string
  files: FileVerdict[]
  problems: Problem[]
  summary: Summary
  intact: boolean
  notes: string[]
  /** Blobs of a model named by path: the command that repairs that model. */
  fix?: string
  /**
   * Files of the revision with nothing on disk, in a model pulled in part (pull --include):
   * not checked, not a failure, not fetched by --repair (sortOutAbsent).
   */
  notPulled: string[]
  /** found: what was wrong before the repair (the report itself is the check after it). */
  repair?: {attempted: boolean; files: string[]; links: string[]; intact: boolean; reason?: string; found: Finding[]; via?: string}
}

/** One thing wrong: a file that is not as published, or a problem beside the files. */
export interface Finding {
  name: string
  status: FileVerdict['status'] | Problem['kind']
  detail?: string
}

/** What a report finds wrong, in the order it is shown. */
export function findings(files: FileVerdict[], problems: Problem[]): Finding[] {
  return [
    ...files.filter((f) => f.status !== 'ok' && f.status !== 'unchecked').map((f) => ({name: f.name, status: f.status, detail: f.detail})),
    ...problems.map((p) => ({name: p.name, status: p.kind, detail: p.detail})),
  ]
}

/** The file's size and, for a snapshot link, where it points (null: no link). */
function onDisk(path: string, link?: string): {size?: number; linkTarget?: string | null} {
  const size = statSync(path, {throwIfNoEntry: false})?.size
  if (!link) return {size}
  const info = lstatSync(link, {throwIfNoEntry: false})
  return {size, linkTarget: info?.isSymbolicLink() ? resolve(dirname(link), readlinkSync(link)) : info ? link : null}
}

/** Hash and judge every expected file. */
async function check(files: Expected[], options: Pick<VerifyOptions, 'workers' | 'signal' | 'onProgress'>): Promise<{verdicts: FileVerdict[]; bytes: number}> {
  const disks = files.map((e) => onDisk(e.path, e.link))
  const todo = files.map((e, i) => ({e, i, algorithm: algorithmFor(e), disk: disks[i]})).filter((x) => x.algorithm && x.disk.size !== undefined && (x.e.size === undefined || x.e.size === x.disk.size))
  const total = todo.reduce((sum, x) => sum + (x.disk.size ?? 0), 0)
  let done = 0
  const hashed = await hashFiles(
    todo.map((x) => ({path: x.e.path, algorithm: x.algorithm!})),
    {sizes: todo.map((x) => x.disk.size ?? 0), workers: options.workers, signal: options.signal, onBytes: (n) => options.onProgress?.((done += n), total)},
  )
  const byIndex = new Map(todo.map((x, k) => [x.i, hashed[k]]))
  return {verdicts: files.map((e, i) => judge(e, disks[i], byIndex.get(i))), bytes: done}
}

/** What is expected, and how its plan was resolved (the reference and options a repair resolves again through a cache). */
interface Expecting {
  exp: Expectations
  plan?: Plan
  notPulled?: string[]
  resolvedAs?: {ref: Exclude<SourceRef, {kind: 'url'}>; options: ResolveOptions}
}

/** What is expected for a source: from the hub when it answers (and is asked), else from the disk. */
async function expectations(target: string, ref: SourceRef, options: VerifyOptions): Promise<Expecting> {
  // The hub's listing through the rack's cache where one is set: a server may reach the hub only through it.
  const resolveIt = (r: Exclude<SourceRef, {kind: 'url'}>, asked: ResolveOptions) => resolveThroughCache(r, asked, options.cache, {dispatcher: options.dispatcher, signal: options.signal, events: options.events ?? {}})
  const online = options.online !== false
  if (ref.kind === 'url') throw new MtuneError('bad-source', `mtune verify checks files on disk: give a PATH (with --sha256) or a model source, not the URL ${target}`, ExitCode.usage)
  if (ref.kind === 'ollama') {
    const exp = ollamaFromDisk(ref)
    const plan = options.repair ? await resolveIt(ref, {}) : undefined
    return {exp, plan, resolvedAs: {ref, options: {}}}
  }
  const select = {include: options.include, exclude: options.exclude, files: options.files}
  const chosen = choosesFiles({...select, paths: pathsOf(ref, options.files), quant: ref.kind === 'hf' ? ref.quant : undefined})
  const sorted = (exp: Expectations, plan: Plan, resolvedAs: Expecting['resolvedAs']) => ({...sortOutAbsent(exp, plan, chosen), plan, resolvedAs})
  if (ref.kind === 'hf') {
    const revision = options.revision ?? ref.revision
    const r = {...ref, revision}
    if (options.localDir) {
      const asked = {endpoint: options.endpoint, localDir: options.localDir, ...select}
      const plan = await resolveIt(r, asked)
      return sorted(fromPlan(plan, 'hf'), plan, {ref: r, options: asked})
    }
    const disk = hfFromDisk(r)
    if (!online) return {exp: disk}
    // An air-gapped cluster says so as huggingface_hub reads it; --repair needs the hub all the same.
    if (!options.repair && hfHubOffline()) {
      return {exp: {...disk, notes: [...disk.notes, 'HF_HUB_OFFLINE is set: checked against the disk alone (blob names are their digests), as huggingface_hub would; unset it to ask the hub']}}
    }
    // The hub's listing of the commit this cache holds for the revision (or of the revision).
    const commit = cachedCommit(hfRepoDir(r), revision) ?? revision
    let plan: Plan
    const asked = {endpoint: options.endpoint, ...select}
    try {
      plan = await resolveIt({...r, revision: commit}, asked)
    } catch (error) {
      if (error instanceof MtuneError && (error.exitCode === ExitCode.interrupted || error.exitCode === ExitCode.usage)) throw error
      return {exp: {...disk, notes: [...disk.notes, `the hub did not answer (${errorMessage(error)}): checked against the disk alone (blob names are their digests); files the revision has that the cache lacks are not seen`]}}
    }
    const fromHub = fromPlan(plan, 'hf', `${hfRepoDir(r)}/snapshots/${commit}`)
    // Blobs the hub lists, plus what the disk alone shows (a leftover, a ref to nothing).
    const leftovers = disk.problems.filter((p) => p.kind === 'incomplete' || p.kind === 'interrupted' || p.name.startsWith('refs/'))
    return sorted({...fromHub, problems: leftovers, root: disk.root}, plan, {ref: {...r, revision: commit}, options: asked})
  }
  const revision = options.revision ?? ref.revision
  const snapshot = modelscopeSnapshot({repo: ref.repo, revision})
  // Never pulled here: one line, as for the Hugging Face cache and the Ollama store.
  if (!options.localDir && !existsSync(snapshot)) {
    const source = `modelscope://${ref.repo}${revision === 'master' ? '' : `@${revision}`}`
    throw new MtuneError('not-in-cache', `${source} is not in the ModelScope cache (${snapshot}): pull it first, or if it was pulled into a plain tree, check that: mtune verify ${source} --local-dir DIR`, ExitCode.integrity)
  }
  // ModelScope publishes sha256s: without its listing there is nothing to check against.
  let plan: Plan
  const asked = {endpoint: options.endpoint, localDir: options.localDir, ...select}
  try {
    plan = await resolveIt({...ref, revision}, asked)
  } catch (error) {
    if (error instanceof MtuneError && error.exitCode !== ExitCode.remote) throw error
    throw new MtuneError('no-listing', `cannot check ${target}: ModelScope's file list (with the digests) did not come (${errorMessage(error)}); try again when it answers`, ExitCode.remote)
  }
  const exp = fromPlan(plan, 'modelscope')
  if (!options.localDir) exp.root = snapshot
  return sorted(exp, plan, {ref: {...ref, revision}, options: asked})
}

/**
 * Is the model (or file) on disk exactly what was published? Every file hashed on all cores;
 * with --repair, exactly the bad or missing files pulled again (resumed and verified by the
 * engine), then checked again.
 */
export async function verify(target: string, ref: SourceRef | undefined, options: VerifyOptions): Promise<VerifyReport> {
  const plain = () => ((options.paths?.length ?? 0) > 1 ? plainFiles(options.paths!) : plainFile(target, options.sha256))
  const expecting: Expecting = ref ? await expectations(target, ref, options) : {exp: plain(), plan: undefined}
  const {plan, notPulled = [], resolvedAs} = expecting
  const exp = sortOutCut(expecting.exp)
  // Timed from here: "hashed in 3.0 s, 12 MiB/s" once counted a hub that did not answer.
  const hashing = performance.now()
  const {verdicts, bytes} = await check(exp.files, options)
  const summary = summarize(verdicts, exp.problems, bytes, (performance.now() - hashing) / 1000)
  const report: VerifyReport = {target, kind: exp.kind, against: exp.against, checksumList: exp.checksumList, root: exp.root, files: verdicts, problems: exp.problems, summary, intact: intact(summary), notes: exp.notes, ...(exp.fix ? {fix: exp.fix} : {}), notPulled}
  if (!options.repair || report.intact) return report
  const found = findings(verdicts, exp.problems)
  const recorded = [...exp.files, ...(exp.resume ?? [])]
  if (!plan && !ref && recorded.some((f) => f.url)) {
    // Plain files mtune pull put in place: fetched again from where they came (a cut one resumed).
    const cut = (exp.resume ?? []).map((f) => f.path)
    const names = await pullAgain(recorded, verdicts, {dispatcher: options.dispatcher, signal: options.signal}, options.events ?? {}, cut)
    const again = await verify(target, ref, {...options, repair: false})
    const reason = leftBad(recorded, verdicts, cut)
    return {...again, repair: {attempted: true, files: names, links: [], intact: again.intact, found, ...(reason ? {reason} : {})}}
  }
  if (!plan) {
    report.repair = {attempted: false, files: [], links: [], intact: false, found, reason: ref ? 'the hub did not answer: nothing to fetch the files from' : exp.against === 'pulled' && exp.fix ? exp.fix : exp.fix ? `a blob is fetched again with its model: ${exp.fix}` : 'a plain file has no source to fetch it from: pull it again with mtune pull URL --sha256 HEX'}
    return report
  }
  // Leftovers go (another download's, which this plan cannot resume); mtune's own part files of
  // the files being repaired stay, and their pulls resume from them.
  for (const p of exp.problems) {
    if ((p.kind === 'incomplete' || p.kind === 'interrupted') && !p.resumes) for (const path of [p.path, `${p.path}.journal`]) rmSync(path, {force: true})
  }
  // Good files stay (a good blob whose link is wrong is only linked again); files not pulled are
  // left out of the plan, links included; every other file is fetched, a corrupt one from scratch.
  const good = new Set(verdicts.filter((v) => v.status === 'ok' || v.status === 'unchecked' || v.linkOnly).map((v) => v.path))
  const skipped = new Set(notPulled)
  // The same narrowing of a plan resolved again through a cache: its files land in the same places.
  const narrow = (p: Plan): Plan => ({...p, files: p.files.filter((f) => !skipped.has(f.name)).map((f) => ({...f, present: good.has(f.dest)}))})
  const {files} = narrow(plan)
  // A corrupt file is fetched from scratch; one that is another client's download cut short
  // (aria2c's, in the file's place) is kept for the pull to take over.
  const kept = new Set(exp.problems.filter((p) => p.resumes).map((p) => p.path))
  for (const f of files) if (!f.present && !kept.has(f.dest)) rmSync(f.dest, {force: true})
  // Named as the lines above them name them (an Ollama blob by its short digest and role).
  const shown = new Map(verdicts.map((v) => [v.path, v.name]))
  const names = files.filter((f) => !f.present).map((f) => shown.get(f.dest) ?? f.name)
  // A good blob whose snapshot link was gone or wrong is not fetched, only linked again: said apart.
  const links = verdicts.filter((v) => v.linkOnly && v.status !== 'ok').map((v) => v.name)
  const run = {dispatcher: options.dispatcher, signal: options.signal}
  // Through the cache where one is set (the hub stays the fallback): a rack repairs from the rack.
  let via: 'cache' | 'origin' = 'origin'
  if (options.cache && resolvedAs) ({via} = await pullThroughCache(resolvedAs.ref, options.cache, resolvedAs.options, run, options.events ?? {}, undefined, narrow))
  else await runPlan({...plan, files}, run, options.events ?? {})
  const again = await verify(target, ref, {...options, repair: false})
  return {...again, repair: {attempted: true, files: names, links, intact: again.intact, found, ...(via === 'cache' ? {via: redact(options.cache!).replace(/\/$/, '')} : {})}}
}

/**
 * pull --verify: the files a plan found present (by size) are hashed against their digests; a bad
 * one is removed and marked missing, so that the pull fetches it again.
 */
export async function recheckPresent(plan: Plan, options: {workers?: number; signal?: AbortSignal}): Promise<{rehashed: number; bad: FileVerdict[]}> {
  const present = plan.files.filter((f) => f.present)
  const {verdicts} = await check(present.map((f) => expectedOf(f)), options)
  const bad = verdicts.filter(isBad)
  for (const v of bad) {
    rmSync(v.path, {force: true})
    const f = plan.files.find((x) => x.dest === v.path)
    if (f) f.present = false
  }
  return {rehashed: present.length, bad}
}

/** pull --verify's step, said as it goes: what was re-hashed, and each bad file pulled again. */
export async function rehashPresent(plan: Plan, signal: AbortSignal | undefined, events: PullEvents): Promise<void> {
  const {rehashed, bad} = await recheckPresent(plan, {signal})
  for (const v of bad) events.warn?.(`${v.name} is ${v.status} on disk (${v.detail}): pulling it again`)
  if (rehashed > 0) events.info?.(`re-hashed the ${rehashed} file${rehashed === 1 ? '' : 's'} already present: ${bad.length ? `${bad.length} bad` : 'all intact'}`)
}
