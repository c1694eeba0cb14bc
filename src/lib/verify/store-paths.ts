import {readFileSync, readdirSync, realpathSync, statSync} from 'node:fs'
import {basename, dirname, join, relative, resolve} from 'node:path'
import {hfCacheDir} from '../sources/hf.js'
import {ollamaModelsDir} from '../sources/ollama.js'
import {fewNames} from '../units.js'
import {HEX40, HEX64, ollamaName, walk} from './expect.js'

/**
 * Paths inside the model stores, recognised from the path alone: people cd into the Hugging Face
 * cache or the Ollama store and ask `mtune verify` about what they see there.
 */

/** A repo's folder in the Hugging Face cache: models--ORG--NAME (datasets--, for a dataset). */
const HF_REPO_FOLDER = /^(models|datasets)--[^-].*--./

/**
 * A folder or file of the Hugging Face cache (`models--ORG--NAME`, one of its snapshots, or a
 * file in one): the repo it holds, and the command that checks it (with HF_HUB_CACHE when that
 * cache is not the one the environment names). A repo name never holds "--" (huggingface_hub
 * refuses it), so the first one after ORG splits the two.
 */
export function hfCacheFolder(path: string): {repo: string; command: string} | undefined {
  const parts = path.split('/')
  const at = parts.findIndex((p) => HF_REPO_FOLDER.test(p))
  if (at < 0) return undefined
  const [kind, org, ...name] = parts[at]!.split('--')
  const repo = `${kind === 'datasets' ? 'datasets/' : ''}${org}/${name.join('--')}`
  const cache = parts.slice(0, at).join('/') || '/'
  const revision = parts[at + 1] === 'snapshots' && parts[at + 2] ? ` --revision ${parts[at + 2]}` : ''
  const env = resolve(hfCacheDir()) === cache ? '' : `HF_HUB_CACHE=${cache} `
  return {repo, command: `${env}mtune verify hf://${repo}${revision}`}
}

/**
 * A folder of a hub's cache that is one repo's copy, where `cd` into the cache leads: the
 * Hugging Face cache's `models--ORG--NAME` or the ModelScope cache's `models/OWNER--NAME` (as
 * pull writes them), or one of its `snapshots/REV` (whose name is the revision). What `mtune
 * verify DIR` checks as the repo's source, in the cache it is in (`cacheVar` names the
 * variable that points there).
 */
export function cacheCopy(path: string): {source: string; revision?: string; cache: string; cacheVar: 'HF_HUB_CACHE' | 'MODELSCOPE_CACHE'} | undefined {
  const full = resolve(path)
  if (!statSync(full, {throwIfNoEntry: false})?.isDirectory()) return undefined
  const parts = full.split('/')
  // The repo's folder, then nothing or snapshots/REV below it.
  const copyBelow = (at: number) => {
    const below = parts.slice(at + 1)
    return below.length === 0 || (below.length === 2 && below[0] === 'snapshots') ? {...(below.length ? {revision: below[1]} : {})} : undefined
  }
  const hf = parts.findIndex((p) => HF_REPO_FOLDER.test(p))
  if (hf >= 0) {
    const rev = copyBelow(hf)
    return rev && {source: `hf://${hfCacheFolder(full)!.repo}`, ...rev, cache: parts.slice(0, hf).join('/') || '/', cacheVar: 'HF_HUB_CACHE'}
  }
  const ms = parts.findIndex((p, i) => i > 0 && parts[i - 1] === 'models' && /^[^-].*?--./.test(p))
  if (ms < 0 || !statSync(join(parts.slice(0, ms + 1).join('/'), 'snapshots'), {throwIfNoEntry: false})?.isDirectory()) return undefined
  const rev = copyBelow(ms)
  const [owner, ...name] = parts[ms]!.split('--')
  return rev && {source: `modelscope://${owner}/${name.join('--')}`, ...rev, cache: parts.slice(0, ms - 1).join('/') || '/', cacheVar: 'MODELSCOPE_CACHE'}
}

/**
 * A store's own root (the Hugging Face cache, with its models--ORG--NAME folders; an Ollama store,
 * with manifests/ and blobs/): the command that checks a model in it, naming a few that are there.
 */
export function storeRoot(dir: string): string | undefined {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return undefined
  }
  const repos = names.filter((n) => HF_REPO_FOLDER.test(n)).map((n) => hfCacheFolder(join(dir, n))!.repo)
  if (repos.length) {
    const env = resolve(hfCacheDir()) === resolve(dir) ? '' : `HF_HUB_CACHE=${dir} `
    return `the Hugging Face cache, holding ${fewNames(repos, 3)}: check one with ${env}mtune verify hf://${repos[0]}`
  }
  if (names.includes('manifests') && names.includes('blobs')) {
    const models = storeManifests(dir).map((m) => m.name)
    const env = resolve(ollamaModelsDir()) === resolve(dir) ? '' : `OLLAMA_MODELS=${dir} `
    return `an Ollama store${models.length ? `, holding ${fewNames(models, 3)}` : ''}: check a model with ${env}mtune verify ollama://${models[0] ?? 'MODEL'}`
  }
  return undefined
}

/** A file named for its digest, the model it belongs to, and the command that repairs that model. */
export interface Addressed {
  digest: {sha256: string} | {gitSha1: string}
  note?: string
  fix?: string
}

/**
 * A file named for its digest, as the stores name their blobs: Ollama's (and any OCI store's)
 * `sha256-HEX`, and the Hugging Face cache's `blobs/HEX` (sha256 for LFS files, git blob sha1 for
 * small ones). A snapshot link is followed to its blob. The name is what the bytes must hash to,
 * so no digest needs giving; the model the blob belongs to is named, for the repair.
 */
export function addressedFile(path: string): Addressed | undefined {
  let real: string
  try {
    real = realpathSync(path)
  } catch {
    return undefined
  }
  const name = basename(real)
  const oci = /^sha256[-:]([0-9a-f]{64})$/.exec(name)?.[1]
  if (oci) return {digest: {sha256: oci}, ...ollamaOwner(real, oci)}
  if (basename(dirname(real)) !== 'blobs') return undefined
  const digest = HEX64.test(name) ? {sha256: name} : HEX40.test(name) ? {gitSha1: name} : undefined
  if (!digest) return undefined
  // The path as given names the snapshot (the revision); the blob's own path only the repo.
  const repo = hfCacheFolder(resolve(path)) ?? hfCacheFolder(real)
  if (!repo) return {digest}
  return {digest, note: `a blob of hf://${repo.repo} in the Hugging Face cache, checked against its name; ${repo.command} checks the whole snapshot`, fix: `${repo.command} --repair`}
}

/** Every model an Ollama store has a manifest for (manifests/HOST/NAMESPACE/MODEL/TAG), as ollama names it. */
function storeManifests(models: string): Array<{name: string; path: string}> {
  const manifests = join(models, 'manifests')
  return walk(manifests).flatMap((path) => {
    const [host, namespace, model, tag, ...rest] = relative(manifests, path).split('/')
    return tag && !rest.length ? [{name: ollamaName({host: host!, namespace: namespace!, model: model!, tag}), path}] : []
  })
}

/** The models in an Ollama store whose manifests name this blob: read from the store the blob is in. */
function ollamaOwner(blob: string, hex: string): {note?: string; fix?: string} {
  if (basename(dirname(blob)) !== 'blobs') return {}
  const models = dirname(dirname(blob))
  const owners: string[] = []
  for (const {name, path} of storeManifests(models)) {
    let text: string
    try {
      text = readFileSync(path, 'utf8')
    } catch {
      continue
    }
    // A manifest is a few hundred bytes of JSON; the digest appears in it exactly as written.
    if (text.includes(`sha256:${hex}`)) owners.push(name)
  }
  if (!owners.length) return {}
  const env = resolve(ollamaModelsDir()) === models ? '' : `OLLAMA_MODELS=${models} `
  const fix = `${env}mtune verify ollama://${owners[0]} --repair`
  return {note: `a blob of ${owners.map((o) => `ollama://${o}`).join(', ')} in the Ollama store ${models}, checked against its name`, fix}
}
