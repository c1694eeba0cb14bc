import {homedir} from 'node:os'
import {join} from 'node:path'
import {ExitCode, MtuneError} from '../errors.js'
import {apiGet, parseJson, type ApiContext} from './api.js'
import {fileMatches} from './file-check.js'
import type {Plan, PlannedFile} from './plan.js'
import {isHex, safeJoin, safeRelativePath} from './safe-names.js'
import {rememberModelDir} from '../verify/pull-record.js'
import {endpointUrl, setting} from '../env-settings.js'

interface FilesAnswer {
  Code?: number
  Message?: string
  Data?: {Files?: Array<{Name?: string; Path?: string; Type?: string; Size?: number; Sha256?: string}>}
}

export function modelscopeEndpoint(env = process.env): string {
  const given = setting(env, 'MODELSCOPE_ENDPOINT')
  return given === undefined ? 'https://modelscope.cn' : endpointUrl(given, 'MODELSCOPE_ENDPOINT', 'https://www.modelscope.ai')
}

export function modelscopeCacheDir(env = process.env): string {
  return setting(env, 'MODELSCOPE_CACHE') ?? join(homedir(), '.cache', 'modelscope')
}

/** modelscope://OWNER/NAME@REV into models/OWNER--NAME/snapshots/REV/PATH, or a plain tree. */
export async function resolveModelscope(
  ref: {repo: string; revision: string},
  options: {endpoint: string; token?: string; localDir?: string; select: (name: string) => boolean; env?: NodeJS.ProcessEnv; givenEndpoint?: string},
  ctx: ApiContext,
): Promise<Plan> {
  const what = `modelscope://${ref.repo}@${ref.revision}`
  const rev = encodeURIComponent(ref.revision)
  const answer = await apiGet(ctx, `${options.endpoint}/api/v1/models/${ref.repo}/repo/files?Revision=${rev}&Recursive=True`)
  if (answer.status === 404) throw new MtuneError('not-found', `${what} not found: check the name and revision`, ExitCode.remote)
  if (answer.status === 401 || answer.status === 403) {
    throw new MtuneError('denied', `${what}: access denied (${answer.status}); give a token in MODELSCOPE_API_TOKEN`, ExitCode.remote)
  }
  if (answer.status !== 200) throw new MtuneError('remote', `${what}: HTTP ${answer.status} for the file list`, ExitCode.remote)
  const list = parseJson<FilesAnswer>(answer, what)
  const entries = (list.Data?.Files ?? []).filter((f) => f.Type === 'blob')
  const root = options.localDir ?? join(modelscopeCacheDir(options.env), 'models', ref.repo.replace('/', '--'), 'snapshots', ref.revision)
  const files: PlannedFile[] = []
  for (const e of entries) {
    const name = safeRelativePath(String(e.Path ?? e.Name ?? ''))
    if (!options.select(name)) continue
    if (e.Sha256 !== undefined && e.Sha256 !== '' && !isHex(e.Sha256, 64)) {
      throw new MtuneError('bad-digest', `refusing the sha256 ${JSON.stringify(e.Sha256)} of ${name} from the server`, ExitCode.remote)
    }
    const file: PlannedFile = {
      name,
      url: `${options.endpoint}/api/v1/models/${ref.repo}/repo?Revision=${rev}&FilePath=${encodeURIComponent(name)}`,
      size: e.Size,
      sha256: e.Sha256 || undefined,
      dest: safeJoin(root, name),
      present: false,
    }
    file.present = await fileMatches(file, true)
    files.push(file)
  }
  return {
    source: what,
    version: `revision ${ref.revision}`,
    root,
    layout: options.localDir ? 'directory' : 'modelscope-cache',
    files,
    headers: options.token ? {authorization: `Bearer ${options.token}`} : {},
    notes: files.some((f) => !f.sha256) ? ['some files have no sha256 in the listing: they are checked by size only'] : [],
    // A plain tree holds no record of its source: mtune's own lets `mtune verify DIR` check it.
    finish: async () => {
      const why = options.localDir ? rememberModelDir(root, `modelscope://${ref.repo}`, ref.revision, options.givenEndpoint, options.env) : undefined
      if (why) ctx.debug?.(why)
    },
  }
}
