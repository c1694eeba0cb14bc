import {chmod, readFile, rmdir, stat} from 'node:fs/promises'
import {existsSync} from 'node:fs'
import {homedir} from 'node:os'
import {dirname, join} from 'node:path'
import {fsyncDirectory, writeFileDurably} from '../fs-atomic.js'
import {ExitCode, MtuneError} from '../errors.js'
import {makeDirs} from '../fs-dirs.js'
import {apiGet, parseJson, type ApiContext} from './api.js'
import {fileMatches} from './file-check.js'
import type {Leftover} from '../transfer/adopt.js'
import type {Plan, PlannedFile} from './plan.js'
import {parseSha256Digest} from './safe-names.js'
import {setting} from '../env-settings.js'

const MANIFEST_TYPES = 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json'
export const SYSTEM_STORE = '/usr/share/ollama/.ollama/models'

interface Manifest {
  schemaVersion?: number
  config?: {digest?: string; size?: number; mediaType?: string}
  layers?: Array<{digest?: string; size?: number; mediaType?: string}>
}

export function ollamaModelsDir(env = process.env): string {
  return setting(env, 'OLLAMA_MODELS') ?? join(homedir(), '.ollama', 'models')
}

/** mtune's own folder in a store, for part files and the manifest's temporary file. */
export const PARTIAL_DIR = '.mtune-partial'

/**
 * Where a blob goes in a store, where mtune keeps its partial download (outside blobs/, where
 * `ollama serve` deletes what is not a digest), and where Ollama leaves its own (adopt.ts).
 */
export function blobPaths(models: string, hex: string): {dest: string; partPath: string; adopt: Leftover} {
  const dest = join(models, 'blobs', `sha256-${hex}`)
  return {dest, partPath: join(models, PARTIAL_DIR, `sha256-${hex}.part`), adopt: {path: `${dest}-partial`, kind: 'ollama'}}
}

/**
 * ollama://[HOST/][NS/]MODEL[:TAG]: the manifest's blobs into blobs/sha256-HEX, then the
 * manifest bytes exactly as received. Partial blobs live outside blobs/, where `ollama serve`
 * would delete them.
 */
export async function resolveOllama(
  ref: {scheme: 'https' | 'http'; host: string; namespace: string; model: string; tag: string},
  options: {modelsDir: string; systemStore?: string; via?: string},
  ctx: ApiContext,
): Promise<Plan> {
  // Through a cache (`via`, an origin), the same paths are asked of it; the model keeps the
  // registry's name, so that `ollama run` finds it as if pulled from the registry.
  const base = `${options.via ?? `${ref.scheme}://${ref.host}`}/v2/${ref.namespace}/${ref.model}`
  const what = `ollama://${ref.host}/${ref.namespace}/${ref.model}:${ref.tag}`
  const answer = await apiGet(ctx, `${base}/manifests/${ref.tag}`, MANIFEST_TYPES)
  if (answer.status === 404) throw new MtuneError('not-found', `${what} not found: check the model name and tag`, ExitCode.remote)
  if (answer.status === 401 || answer.status === 403) throw new MtuneError('denied', `${what}: access denied (${answer.status})`, ExitCode.remote)
  if (answer.status !== 200) throw new MtuneError('remote', `${what}: HTTP ${answer.status} for the manifest`, ExitCode.remote)
  const raw = answer.body
  const manifest = parseJson<Manifest>(answer, what)
  const layers = [...(manifest.config ? [manifest.config] : []), ...(manifest.layers ?? [])]
  if (layers.length === 0) throw new MtuneError('bad-answer', `${what}: the manifest names no blobs`, ExitCode.remote)

  const partial = join(options.modelsDir, PARTIAL_DIR)
  const files: PlannedFile[] = []
  const seen = new Set<string>()
  for (const layer of layers) {
    const hex = parseSha256Digest(layer.digest)
    if (seen.has(hex)) continue
    seen.add(hex)
    if (layer.size !== undefined && (!Number.isSafeInteger(layer.size) || layer.size < 0)) {
      throw new MtuneError('bad-answer', `${what}: blob ${layer.digest} has an invalid size`, ExitCode.remote)
    }
    const file: PlannedFile = {
      name: `${layer.digest}${layer.mediaType ? ` (${layer.mediaType.replace('application/vnd.ollama.image.', '')})` : ''}`,
      url: `${base}/blobs/${layer.digest}`,
      size: layer.size,
      sha256: hex,
      ...blobPaths(options.modelsDir, hex),
      present: false,
    }
    file.present = await fileMatches(file, false)
    files.push(file)
  }
  const manifestPath = join(options.modelsDir, 'manifests', ref.host, ref.namespace, ref.model, ref.tag)
  const notes: string[] = []
  const system = options.systemStore ?? SYSTEM_STORE
  if (existsSync(system) && system !== options.modelsDir) {
    notes.push(`the system service (ollama.service, user ollama) reads ${system}; to pull there, run as that user with OLLAMA_MODELS=${system}`)
  }
  // mtune's own folder in the store goes once empty: another pull's parts keep it (ENOTEMPTY).
  const tidy = () => rmdir(partial).catch(() => {})
  return {
    source: what,
    version: `manifest of ${raw.length} bytes`,
    root: options.modelsDir,
    layout: 'ollama',
    files,
    headers: {},
    notes,
    finish: async () => {
      // Nothing written that is already so: a complete model in a store this user cannot write
      // (the system service's) is complete, not an error.
      for (const f of files) if (((await stat(f.dest)).mode & 0o777) !== 0o644) await chmod(f.dest, 0o644)
      if ((await readFile(manifestPath).catch(() => undefined))?.equals(raw)) return tidy()
      await makeDirs(partial)
      // Written last, so Ollama never sees a manifest whose blobs are not all in place.
      await makeDirs(dirname(manifestPath))
      // The temporary file stays out of manifests/, which Ollama reads as tags; flushed before
      // and after the rename, so that a power loss cannot leave a manifest naming lost blobs.
      await fsyncDirectory(join(options.modelsDir, 'blobs'))
      await writeFileDurably(manifestPath, raw, {mode: 0o644, tmp: join(partial, `manifest-${process.pid}.tmp`)})
      await stat(manifestPath)
      await tidy()
    },
  }
}
