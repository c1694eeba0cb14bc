import {readFile, readlink, rename, rm, symlink} from 'node:fs/promises'
import {dirname, join, relative} from 'node:path'
import {ExitCode, MtuneError} from '../errors.js'
import {fsyncDirectory, writeFileDurably} from '../fs-atomic.js'
import {makeDirs} from '../fs-dirs.js'
import {apiGet, parseJson, type ApiAnswer, type ApiContext} from './api.js'
import {fileMatches} from './file-check.js'
import {SIBLINGS_TRUSTED, listTree, type Sibling} from './hf-tree.js'
import {downloadIncompletePath, writeDownloadMetadata} from './hf-local-dir.js'
import type {Plan, PlannedFile} from './plan.js'
import {isHex, safeJoin, safeRelativePath} from './safe-names.js'
import {hfHome} from './tokens.js'
import {endpointUrl, pathSetting, setting} from '../env-settings.js'

export interface HfOptions {
  endpoint: string
  token?: string
  /** Which of the repo's files: the --include/--exclude globs and the reference's path (select.ts). */
  select: (name: string) => boolean
  /** A plain tree instead of the cache. */
  localDir?: string
  env?: NodeJS.ProcessEnv
}

interface RepoInfo {
  id?: string
  sha?: string
  gated?: boolean | string
  siblings?: Sibling[]
}

/**
 * Where huggingface_hub keeps its cache: HF_HUB_CACHE, then the older HUGGINGFACE_HUB_CACHE
 * (still read by huggingface_hub, and set in many images and service units), then
 * $HF_HOME/hub, then $XDG_CACHE_HOME/huggingface/hub.
 */
export function hfCacheDir(env = process.env): string {
  return pathSetting(env, 'HF_HUB_CACHE') ?? pathSetting(env, 'HUGGINGFACE_HUB_CACHE') ?? join(hfHome(env), 'hub')
}

export function hfEndpoint(flag: string | undefined, env = process.env): string {
  const given = setting(env, 'HF_ENDPOINT')
  return flag !== undefined ? endpointUrl(flag, '--endpoint') : given !== undefined ? endpointUrl(given, 'HF_ENDPOINT') : 'https://huggingface.co'
}

/**
 * What the Hub's error answers mean, in words and with the fix (protocols.md: X-Error-Code). The
 * --json code is mtune's own (hf-gated, hf-repo-not-found, ...), never the header's raw value.
 */
export function hfError(answer: ApiAnswer, what: string, hasToken: boolean): MtuneError {
  const code = answer.headers['x-error-code']
  const serverSays = answer.headers['x-error-message']
  const status = answer.status
  const error = (kind: string, message: string) => new MtuneError(`hf-${kind}`, message, ExitCode.remote)
  if (code === 'GatedRepo') {
    return error(
      'gated',
      hasToken
        ? `${what} is gated and your token has no access yet: request access on the model's page, then try again`
        : `${what} is gated: request access on the model's page and give a token (HF_TOKEN)`,
    )
  }
  if (code === 'RepoNotFound' || (status === 401 && !code && !hasToken)) {
    return error(
      'repo-not-found',
      hasToken ? `${what} not found, or your token cannot see it: check the name` : `${what} not found, or private: check the name, or give a token (HF_TOKEN)`,
    )
  }
  if (code === 'RevisionNotFound') return error('revision-not-found', `revision not found: ${what}; check the branch, tag or commit after @`)
  if (code === 'EntryNotFound') return error('entry-not-found', `file not found: ${what}`)
  if (status === 401 && hasToken) return error('token-refused', `the token was refused for ${what} (401${serverSays ? `: ${serverSays}` : ''}): check HF_TOKEN`)
  if (status === 429) return error('rate-limited', `still rate limited by the Hub after waiting: try again later`)
  return error('error', `${what}: HTTP ${status}${serverSays ? ` (${serverSays})` : ''}`)
}

const encodePath = (path: string) => path.split('/').map(encodeURIComponent).join('/')

/** A plan's source as the Hub's listing names it: hf://[datasets/]ORG/NAME@REV. */
export const hfSource = (ref: {repoType: 'model' | 'dataset'; repo: string; revision: string}) =>
  `hf://${ref.repoType === 'dataset' ? 'datasets/' : ''}${ref.repo}@${ref.revision}`

/** hf://ORG/NAME@REV: the repo's files at one commit, laid out as the official client lays them. */
export async function resolveHf(
  ref: {repoType: 'model' | 'dataset'; repo: string; revision: string},
  options: HfOptions,
  ctx: ApiContext,
): Promise<Plan> {
  const kind = ref.repoType === 'dataset' ? 'datasets' : 'models'
  const what = hfSource(ref)
  const answer = await apiGet(ctx, `${options.endpoint}/api/${kind}/${ref.repo}/revision/${encodeURIComponent(ref.revision)}?blobs=true`)
  if (answer.status !== 200) throw hfError(answer, what, Boolean(options.token))
  const info = parseJson<RepoInfo>(answer, what)
  if (!isHex(info.sha, 40)) throw new MtuneError('bad-answer', `${what}: the Hub gave no commit hash`, ExitCode.remote)
  const commit = info.sha
  const listed = info.siblings ?? []
  const all = listed.length > 0 && listed.length <= SIBLINGS_TRUSTED ? listed : await listTree(ctx, {endpoint: options.endpoint, kind, repo: ref.repo, commit, what}, (refused) => hfError(refused, what, Boolean(options.token)))
  const siblings = all.filter((s) => options.select(s.rfilename))

  const repoDir = join(hfCacheDir(options.env), `${kind}--${ref.repo.replace('/', '--')}`)
  const files: PlannedFile[] = []
  for (const s of siblings) {
    const name = safeRelativePath(s.rfilename)
    const sha256 = s.lfs?.sha256
    if (sha256 !== undefined && !isHex(sha256, 64)) {
      throw new MtuneError('bad-digest', `refusing the sha256 ${JSON.stringify(sha256)} of ${name} from the server`, ExitCode.remote)
    }
    if (sha256 === undefined && !isHex(s.blobId, 40)) {
      throw new MtuneError('bad-digest', `${what}: ${name} has neither a sha256 nor a git blob id`, ExitCode.remote)
    }
    const size = s.lfs?.size ?? s.size
    const url = `${options.endpoint}/${kind === 'datasets' ? 'datasets/' : ''}${ref.repo}/resolve/${commit}/${encodePath(name)}`
    const dest = options.localDir ? safeJoin(options.localDir, name) : join(repoDir, 'blobs', sha256 ?? s.blobId!)
    // huggingface_hub's own partial download of this file, which a pull takes over (its etag is the blob's name).
    const etag = sha256 ?? s.blobId!
    const incomplete = options.localDir ? downloadIncompletePath(options.localDir, name, etag) : `${dest}.incomplete`
    const file: PlannedFile = {name, url, size, sha256, gitSha1: sha256 ? undefined : s.blobId, dest, present: false, adopt: {path: incomplete, kind: 'appended'}}
    file.present = await fileMatches(file, Boolean(options.localDir))
    files.push(file)
  }

  const layout = options.localDir ? 'directory' : 'hf-cache'
  return {
    source: what,
    version: `commit ${commit.slice(0, 12)}`,
    root: options.localDir ?? repoDir,
    layout,
    files,
    headers: options.token ? {authorization: `Bearer ${options.token}`} : {},
    notes: [],
    finish: async (pulled) => {
      if (options.localDir) return writeDownloadMetadata(options.localDir, commit, pulled)
      await linkSnapshot(repoDir, commit, pulled)
      if (ref.revision !== commit) {
        // The commit, with no trailing newline: the official client reads it without strip().
        const refPath = safeJoin(join(repoDir, 'refs'), ref.revision)
        if ((await readFile(refPath, 'utf8').catch(() => undefined)) === commit) return
        await makeDirs(dirname(refPath))
        await writeFileDurably(refPath, commit).catch((error: NodeJS.ErrnoException) => Promise.reject(Object.assign(error, {path: refPath})))
      }
    },
  }
}

/**
 * snapshots/COMMIT/PATH -> ../../blobs/ETAG, relative, one more ../ per sub-folder. Links that
 * already point there are left alone: a complete model in a cache this user cannot write (a
 * shared, read-only one) is complete, not an error.
 */
async function linkSnapshot(repoDir: string, commit: string, files: PlannedFile[]): Promise<void> {
  const snapshot = join(repoDir, 'snapshots', commit)
  const changed = new Set<string>()
  for (const f of files) {
    const link = safeJoin(snapshot, f.name)
    const target = relative(dirname(link), f.dest)
    if ((await readlink(link).catch(() => undefined)) === target) continue
    await makeDirs(dirname(link))
    // Made beside it and renamed over it: another pull of the model, finishing at the same
    // time, never finds the link missing or in its way.
    const staged = `${link}.${process.pid}.tmp`
    try {
      await rm(staged, {force: true})
      await symlink(target, staged)
      await rename(staged, link)
    } catch (error) {
      // symlink's error names the target; the user needs the link that could not be written.
      throw Object.assign(error as NodeJS.ErrnoException, {path: link})
    }
    changed.add(dirname(link))
  }
  // The links (and the snapshot's own entry) survive a power loss, like the blobs they name.
  if (changed.size > 0) changed.add(join(repoDir, 'snapshots'))
  for (const dir of changed) await fsyncDirectory(dir)
}
