import {ExitCode, MtuneError, usageError} from '../errors.js'
import {endpointUrl, setting} from '../env-settings.js'
import type {ApiContext} from './api.js'
import {cacheEndpoints} from './cache-endpoints.js'
import {hfEndpoint, resolveHf} from './hf.js'
import {modelscopeEndpoint, resolveModelscope} from './modelscope.js'
import {ollamaModelsDir, resolveOllama} from './ollama.js'
import type {Plan} from './plan.js'
import type {SourceRef} from './reference.js'
import {choosesFiles, pathsOf, selector, underPath, type Selection} from './select.js'
import {ggufVariant, weightNotes} from './weight-formats.js'
import {nearestPath} from '../near-names.js'
import {fewNames} from '../units.js'
import {hfToken, modelscopeToken} from './tokens.js'
import {sudoNote} from './sudo-note.js'

export interface ResolveOptions {
  endpoint?: string
  include?: string[]
  exclude?: string[]
  /** Paths in the repo named after the source (hf:// and modelscope://), beside the reference's own. */
  files?: string[]
  localDir?: string
  env?: NodeJS.ProcessEnv
  /**
   * Ask without the user's token: for endpoints the user did not choose (the public mirrors
   * pull --auto adds), which must never receive it.
   */
  anonymous?: boolean
  /** An mtune cache (its base URL): each hub's requests go through its endpoints. */
  cache?: string
}

/** The token resolvePlan sends to a source's hub: the user's, unless asked anonymously (Ollama has none). */
export function tokenFor(kind: Exclude<SourceRef, {kind: 'url'}>['kind'], options: Pick<ResolveOptions, 'anonymous' | 'env'>): string | undefined {
  if (options.anonymous) return undefined
  const env = options.env ?? process.env
  return kind === 'hf' ? hfToken(env) : kind === 'modelscope' ? modelscopeToken(env) : undefined
}

/** A model source reference as a plan of files, with each ecosystem's defaults and tokens. */
export async function resolvePlan(ref: Exclude<SourceRef, {kind: 'url'}>, options: ResolveOptions, ctx: Omit<ApiContext, 'headers'>): Promise<Plan> {
  const env = options.env ?? process.env
  switch (ref.kind) {
    case 'hf': {
      const token = tokenFor('hf', options)
      const endpoint = options.cache ? cacheEndpoints(options.cache).hf : hfEndpoint(options.endpoint, env)
      const selection = {...options, paths: pathsOf(ref, options.files), quant: ref.quant}
      const listed = new Set<string>()
      const plan = await resolveHf(ref, {endpoint, token, select: listing(selector(selection), listed), localDir: options.localDir, env}, {...ctx, headers: token ? {authorization: `Bearer ${token}`} : {}}).catch(
        unreachable(options, env, 'HF_ENDPOINT', 'huggingface.co'),
      )
      return withSudoNote(selectionSaid(plan, selection, listed), 'hf', options, env)
    }
    case 'modelscope': {
      const token = tokenFor('modelscope', options)
      const endpoint = options.cache
        ? cacheEndpoints(options.cache).modelscope
        : options.endpoint !== undefined
          ? endpointUrl(options.endpoint, '--endpoint', 'https://www.modelscope.ai')
          : modelscopeEndpoint(env)
      const selection = {...options, paths: pathsOf(ref, options.files)}
      const listed = new Set<string>()
      const plan = await resolveModelscope(ref, {endpoint, token, localDir: options.localDir, select: listing(selector(selection), listed), env, givenEndpoint: options.endpoint}, {...ctx, headers: token ? {authorization: `Bearer ${token}`} : {}}).catch(
        unreachable(options, env, 'MODELSCOPE_ENDPOINT', 'modelscope.cn'),
      )
      return withSudoNote(selectionSaid(plan, selection, listed), 'modelscope', options, env)
    }
    case 'ollama':
      return withSudoNote(await resolveOllama(ref, {modelsDir: ollamaModelsDir(env), via: options.cache && cacheEndpoints(options.cache).ollama}, {...ctx, headers: {}}), 'ollama', options, env)
  }
}

/** A plan into the default store of a pull run with sudo, with the note that says whose store that is. */
function withSudoNote(plan: Plan, store: 'hf' | 'modelscope' | 'ollama', options: ResolveOptions, env: NodeJS.ProcessEnv): Plan {
  const note = options.localDir ? undefined : sudoNote(store, plan.root, env)
  return note ? {...plan, notes: [note, ...plan.notes]} : plan
}

/**
 * A hub endpoint that cannot be reached, named with the setting that chose it: an HF_ENDPOINT
 * exported for a rack cache that has since stopped reads otherwise as the Hub being down.
 */
function unreachable(options: ResolveOptions, env: NodeJS.ProcessEnv, variable: string, otherwise: string) {
  // An endpoint given here (--endpoint, or a candidate of pull --auto) is in the command already.
  const fromEnv = !options.cache && options.endpoint === undefined && setting(env, variable) !== undefined
  return (error: unknown): never => {
    if (!fromEnv || !(error instanceof MtuneError) || error.exitCode !== ExitCode.remote || !/^cannot reach /.test(error.message)) throw error
    throw new MtuneError(error.code, `${error.message}, the endpoint from ${variable}: check it (a rack cache: mtune cache status on its host), or unset it for ${otherwise}`, error.exitCode, {cause: error})
  }
}

/** The selector, noting every name the repo lists: what a selection that matched nothing could have meant. */
const listing =
  (select: (name: string) => boolean, listed: Set<string>) =>
  (name: string): boolean => {
    listed.add(name)
    return select(name)
  }

/**
 * A repo's plan as the selection left it: named with its path (hf://ORG/NAME@REV/PATH, the way
 * back to it), refused when the selection matches nothing, and for a whole repo, with what most
 * users would leave out of it in its notes.
 */
function selectionSaid(plan: Plan, selection: Selection, listed: Set<string>): Plan {
  matchedSomething(plan, selection, [...listed])
  // As the user would write it: hf://ORG/NAME:QUANT@REV/PATH.
  // Several paths are not one source: the plan's lines name its files.
  const path = selection.paths?.length === 1 ? `/${selection.paths[0]}` : ''
  const source = `${selection.quant ? plan.source.replace('@', `:${selection.quant}@`) : plan.source}${path}`
  const named = {...plan, source}
  return choosesFiles(selection) ? named : {...named, notes: [...named.notes, ...weightNotes(named.files.filter((f) => !f.present), named.source)]}
}

/**
 * Globs or a path that match no file are a mistake (a typo, a path without its folder), not a
 * pull with nothing to do: said as such, rather than "already complete, 0 files", with what was
 * probably meant from the names the repo lists.
 */
function matchedSomething(plan: Plan, options: Selection, names: string[]): void {
  const globs = [...(options.include ?? []).map((g) => `--include '${g}'`), ...(options.exclude ?? []).map((g) => `--exclude '${g}'`)].join(' ')
  const listing = `list its files with mtune pull ${plan.source} --dry-run`
  const path = (p: string) => {
    const meant = nearestPath(p, names)
    return `the path ${p}${meant ? ` (did you mean ${meant}?)` : ''}`
  }
  // Each path named must find something: one mistyped among several is as much a mistake.
  if (plan.files.length > 0 && (options.paths?.length ?? 0) > 1) {
    const none = options.paths!.filter((p) => !plan.files.some((f) => underPath(f.name, p)))
    if (none.length) throw usageError('nothing-selected', `no file of ${plan.source} matches ${none.map(path).join(', ')}${globs ? ` with ${globs}` : ''}: ${listing}`)
  }
  if (plan.files.length > 0 || !choosesFiles(options)) return
  const paths = (options.paths ?? []).map(path).join(', ')
  const what = [...(options.quant ? [`the GGUF variant ${options.quant} (${variantsOf(names)})`] : []), ...(paths ? [paths] : []), ...(globs ? [globs] : [])].join(' and ')
  throw usageError('nothing-selected', `no file of ${plan.source} matches ${what}: ${listing}`)
}

/** The GGUF variants a repo's names hold, as hf://ORG/NAME:TAG takes them. */
function variantsOf(names: string[]): string {
  const tags = [...new Set(names.filter((n) => /\.gguf$/i.test(n) && !/(^|\/)mmproj/i.test(n)).map(ggufVariant).filter((t): t is string => Boolean(t)))]
  if (tags.length === 0) return names.some((n) => /\.gguf$/i.test(n)) ? 'its GGUF files name no variant' : 'it holds no GGUF file'
  return `it holds ${fewNames(tags.sort(), 8)}`
}
