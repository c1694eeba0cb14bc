import {existsSync, lstatSync, readFileSync, readdirSync, readlinkSync} from 'node:fs'
import {basename, dirname, join, relative, resolve} from 'node:path'
import {ExitCode, MtuneError} from '../errors.js'
import {hfCacheDir} from '../sources/hf.js'
import {modelscopeCacheDir} from '../sources/modelscope.js'
import {blobPaths, ollamaModelsDir, PARTIAL_DIR, SYSTEM_STORE} from '../sources/ollama.js'
import type {Plan, PlannedFile} from '../sources/plan.js'
import type {SourceRef} from '../sources/reference.js'
import {holderWords, liveHolder} from '../transfer/pull-lock.js'
import {currentBootId} from '../transfer/journal.js'

/**
 * What should be on disk, from the disk itself (blob names are digests; an Ollama manifest names
 * its blobs) or from the hub's listing (a plan): every file with what it is checked against, and
 * the problems seen without hashing anything (a link to nothing, a leftover partial file).
 */
export interface Expected {
  /** As the user knows it: the path in the repo, or the digest and its kind. */
  name: string
  /** The file to check. */
  path: string
  size?: number
  sha256?: string
  gitSha1?: string
  /** For the HF cache: the snapshot link that must point at `path`. */
  link?: string
  /** Where mtune pull fetched this plain file from (pull-record.ts): --repair fetches it there again. */
  url?: string
  /** What mtune pull did not record of the URL it came from (then there is no `url` to fetch again). */
  withheld?: string[]
}

export type ProblemKind = 'corrupt' | 'truncated' | 'missing' | 'dangling' | 'incomplete' | 'interrupted' | 'unreadable'

export interface Problem {
  name: string
  path: string
  kind: ProblemKind
  detail: string
  /** mtune's own part file of a file being repaired: resumed by the repair, not deleted. */
  resumes?: boolean
}

/**
 * A file whose pull was cut, kept for a pull (or --repair) to finish: from mtune's own part file,
 * or, `whose` download it was, by taking that over (adopt.ts).
 */
export function interruptedAt(name: string, path: string, whose?: string, resumes = true): Problem {
  // mtune's own part file may be one a pull is writing now: said so, not "interrupted".
  const holder = whose ? undefined : liveHolder(path, currentBootId())
  const pulling = holder && `being pulled now (mtune ${holderWords(holder)}): check again once it is done`
  return {
    name,
    path,
    kind: 'interrupted',
    detail: pulling || (whose ? `${whose} download of it was cut: mtune pull takes it over` : 'a pull was interrupted: mtune pull resumes it'),
    ...(resumes ? {resumes: true} : {}),
  }
}

export interface Expectations {
  kind: 'hf' | 'ollama' | 'modelscope' | 'file'
  /** What the files are checked against. */
  against: 'hub' | 'disk' | 'manifest' | 'sha256' | 'list' | 'each' | 'header' | 'record' | 'pulled'
  /** With `against: 'list'`: the checksum list (SHA256SUMS) the digests come from. */
  checksumList?: string
  /** Files of a model named by path (a blob): the command that repairs that model. */
  fix?: string
  root: string
  files: Expected[]
  /** Found without hashing. */
  problems: Problem[]
  /** Files recorded with their URL whose pull was cut (a problem each): --repair fetches them there, resuming. */
  resume?: Expected[]
  notes: string[]
}

export const HEX64 = /^[0-9a-f]{64}$/
export const HEX40 = /^[0-9a-f]{40}$/

function isLink(path: string): boolean {
  return lstatSync(path, {throwIfNoEntry: false})?.isSymbolicLink() ?? false
}

export function walk(dir: string, out: string[] = []): string[] {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return out
  }
  for (const name of names.sort()) {
    const path = join(dir, name)
    const info = lstatSync(path, {throwIfNoEntry: false})
    if (info?.isDirectory()) walk(path, out)
    else if (info) out.push(path)
  }
  return out
}

/** The HF cache folder of a repo: models--ORG--NAME or datasets--ORG--NAME. */
export const hfRepoDir = (ref: {repoType: 'model' | 'dataset'; repo: string}, env = process.env) =>
  join(hfCacheDir(env), `${ref.repoType === 'dataset' ? 'datasets' : 'models'}--${ref.repo.replace('/', '--')}`)

/** The commit a revision names in the cache: itself, or what refs/REV holds. */
export function cachedCommit(repoDir: string, revision: string): string | undefined {
  if (HEX40.test(revision)) return revision
  try {
    const commit = readFileSync(join(repoDir, 'refs', revision), 'utf8').trim()
    return HEX40.test(commit) ? commit : undefined
  } catch {
    return undefined
  }
}

/**
 * Leftovers in the HF cache: blobs still .incomplete (huggingface_hub's download that was cut),
 * mtune's own part files (a pull interrupted), refs to no snapshot.
 */
function hfLeftovers(repoDir: string): Problem[] {
  const problems: Problem[] = []
  for (const path of walk(join(repoDir, 'blobs'))) {
    if (path.endsWith('.incomplete')) problems.push({name: `blobs/${basename(path)}`, path, kind: 'incomplete', detail: 'a partial download left behind'})
    if (path.endsWith('.part')) problems.push(interruptedAt(`blobs/${basename(path)}`, path, undefined, false))
  }
  for (const path of walk(join(repoDir, 'refs'))) {
    const commit = readFileSync(path, 'utf8').trim()
    const ref = relative(join(repoDir, 'refs'), path)
    if (!HEX40.test(commit)) problems.push({name: `refs/${ref}`, path, kind: 'corrupt', detail: 'does not hold a commit hash'})
    else if (!existsSync(join(repoDir, 'snapshots', commit))) problems.push({name: `refs/${ref}`, path, kind: 'dangling', detail: `points to snapshot ${commit.slice(0, 12)}, which is not in the cache`})
  }
  return problems
}

/**
 * An HF repo checked against its own cache, offline: each snapshot link names its blob, and the
 * blob's name is its digest (sha256 for LFS files, git blob sha1 for small ones).
 */
export function hfFromDisk(ref: {repoType: 'model' | 'dataset'; repo: string; revision: string}, env = process.env): Expectations {
  const repoDir = hfRepoDir(ref, env)
  if (!existsSync(repoDir)) {
    const source = `hf://${ref.repoType === 'dataset' ? 'datasets/' : ''}${ref.repo}`
    throw new MtuneError('not-in-cache', `${source} is not in the Hugging Face cache (${repoDir}): pull it first, or if it was pulled into a plain tree, check that: mtune verify ${source} --local-dir DIR`, ExitCode.integrity)
  }
  const commit = cachedCommit(repoDir, ref.revision)
  const out: Expectations = {kind: 'hf', against: 'disk', root: repoDir, files: [], problems: hfLeftovers(repoDir), notes: []}
  if (!commit) {
    out.problems.push({name: `refs/${ref.revision}`, path: join(repoDir, 'refs', ref.revision), kind: 'missing', detail: `revision ${ref.revision} was never pulled into this cache`})
    return out
  }
  const snapshot = join(repoDir, 'snapshots', commit)
  if (!existsSync(snapshot)) {
    out.problems.push({name: `snapshots/${commit.slice(0, 12)}`, path: snapshot, kind: 'missing', detail: 'the snapshot is not in the cache'})
    return out
  }
  for (const link of walk(snapshot)) {
    const name = relative(snapshot, link)
    if (!isLink(link)) {
      // Copied rather than linked (filesystems without symlinks): no digest to check it against.
      out.files.push({name, path: link})
      continue
    }
    const target = resolve(dirname(link), readlinkSync(link))
    const blob = basename(target)
    const digest = HEX64.test(blob) ? {sha256: blob} : HEX40.test(blob) ? {gitSha1: blob} : {}
    if (!existsSync(target)) {
      out.problems.push({name, path: link, kind: 'dangling', detail: `links to blobs/${blob}, which is missing`})
      continue
    }
    out.files.push({name, path: target, link, ...digest})
  }
  return out
}

/** A planned file as what must be on disk (and, in the HF cache, the snapshot link naming it). */
export const expectedOf = (f: PlannedFile, snapshot?: string): Expected => ({
  name: f.name,
  path: f.dest,
  size: f.size,
  sha256: f.sha256,
  gitSha1: f.sha256 ? undefined : f.gitSha1,
  ...(snapshot ? {link: join(snapshot, f.name)} : {}),
})

/** A plan from the hub (files, sizes, digests) as what must be on disk. */
export function fromPlan(plan: Plan, kind: Expectations['kind'], snapshot?: string): Expectations {
  return {
    kind,
    against: 'hub',
    root: plan.root,
    files: plan.files.map((f) => expectedOf(f, snapshot)),
    problems: [],
    notes: plan.files.some((f) => !f.sha256 && !f.gitSha1) ? ['some files have no digest in the hub\'s listing: they are checked by size only'] : [],
  }
}

/**
 * A model's name as Ollama shows it (model.Name's DisplayShortest): the default registry and its
 * `library` namespace left out; another registry with its namespace always, since HOST/MODEL
 * would read as NAMESPACE/MODEL.
 */
export const ollamaName = (ref: {host: string; namespace: string; model: string; tag: string}) =>
  `${ref.host === 'registry.ollama.ai' ? (ref.namespace === 'library' ? '' : `${ref.namespace}/`) : `${ref.host}/${ref.namespace}/`}${ref.model}:${ref.tag}`

function notInStore(ref: Extract<SourceRef, {kind: 'ollama'}>, models: string): MtuneError {
  const name = ollamaName(ref)
  const source = `ollama://${name}${ref.scheme === 'http' ? ' --insecure' : ''}`
  const service = models === SYSTEM_STORE ? '' : ` (the Ollama service's is ${SYSTEM_STORE})`
  return new MtuneError('not-in-cache', `${name} is not in the Ollama store ${models}: pull it first (mtune pull ${source}), or set OLLAMA_MODELS to the store it is in${service}`, ExitCode.integrity)
}

/** An Ollama model: its manifest in OLLAMA_MODELS, and every blob it names against its digest. */
export function ollamaFromDisk(ref: Extract<SourceRef, {kind: 'ollama'}>, env = process.env): Expectations {
  const models = ollamaModelsDir(env)
  const manifestPath = join(models, 'manifests', ref.host, ref.namespace, ref.model, ref.tag)
  const out: Expectations = {kind: 'ollama', against: 'manifest', root: models, files: [], problems: [], notes: []}
  let manifest: {config?: {digest?: string; size?: number}; layers?: Array<{digest?: string; size?: number; mediaType?: string}>}
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8'))
  } catch (error) {
    // Never pulled into this store: said as for the Hugging Face cache, not as "0 of 0 files".
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw notInStore(ref, models)
    out.problems.push({name: `manifest ${ref.namespace}/${ref.model}:${ref.tag}`, path: manifestPath, kind: 'corrupt', detail: 'not valid JSON'})
    return out
  }
  for (const layer of [...(manifest.config ? [{...manifest.config, mediaType: 'config'}] : []), ...(manifest.layers ?? [])]) {
    const hex = /^sha256:([0-9a-f]{64})$/.exec(layer.digest ?? '')?.[1]
    if (!hex) {
      out.problems.push({name: String(layer.digest), path: manifestPath, kind: 'corrupt', detail: 'the manifest names a blob that is not a sha256 digest'})
      continue
    }
    if (out.files.some((f) => f.sha256 === hex)) continue
    const kind = (layer.mediaType ?? '').replace('application/vnd.ollama.image.', '')
    out.files.push({name: `sha256:${hex.slice(0, 12)}${kind ? ` (${kind})` : ''}`, path: blobPaths(models, hex).dest, size: layer.size, sha256: hex})
  }
  return sortOutPartials(out, models)
}

/**
 * Partial downloads in an Ollama store, which every model shares:
 * - of a blob of this model that is not there: the pull was interrupted, mtune's own (resumed)
 *   or `ollama pull`'s (taken over, adopt.ts). Said once, as the blob's state, and kept;
 * - of a blob of this model that is there: a leftover, which --repair removes;
 * - of any other blob: another model's pull, running or cut. Not this model's problem, and not
 *   --repair's to delete: a note.
 */
function sortOutPartials(out: Expectations, models: string): Expectations {
  const partials = [...walk(join(models, PARTIAL_DIR)), ...walk(join(models, 'blobs')).filter((p) => /-partial(-\d+)?$/.test(p))]
  const claimed = new Set<string>()
  const files: Expected[] = []
  for (const f of out.files) {
    const paths = blobPaths(models, f.sha256!)
    const own = partials.filter((p) => p.startsWith(paths.partPath))
    const theirs = partials.filter((p) => p.startsWith(paths.adopt.path))
    for (const p of [...own, ...theirs]) claimed.add(p)
    if (existsSync(f.path)) {
      files.push(f)
      for (const path of [...own, ...theirs]) out.problems.push({name: relative(models, path), path, kind: 'incomplete', detail: 'a partial download of a blob that is complete: left behind'})
    } else if (own.includes(paths.partPath)) {
      out.problems.push(interruptedAt(f.name, paths.partPath))
    } else if (theirs.includes(paths.adopt.path)) {
      out.problems.push(interruptedAt(f.name, paths.adopt.path, "ollama pull's"))
    } else files.push(f)
  }
  const others = partials.filter((p) => !claimed.has(p)).length
  if (others > 0) out.notes.push(`${others} partial file${others === 1 ? '' : 's'} of other blobs in the store (another model's pull, running or cut): not this model's, left alone`)
  return {...out, files}
}

/** The ModelScope cache folder of a revision (as pull writes it). */
export const modelscopeSnapshot = (ref: {repo: string; revision: string}, env = process.env) => join(modelscopeCacheDir(env), 'models', ref.repo.replace('/', '--'), 'snapshots', ref.revision)
