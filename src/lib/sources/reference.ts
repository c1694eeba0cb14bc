import {usageError} from '../errors.js'
import {decodePart, webPageHint} from './web-pages.js'

export type SourceRef =
  | {kind: 'url'; url: string}
  | {kind: 'hf'; repoType: 'model' | 'dataset'; repo: string; revision: string; path?: string; quant?: string}
  | {kind: 'ollama'; scheme: 'https' | 'http'; host: string; namespace: string; model: string; tag: string}
  | {kind: 'modelscope'; repo: string; revision: string; path?: string}

const REPO_PART = /^[A-Za-z0-9][A-Za-z0-9._-]*$/

function repoName(text: string, input: string, example: string): string {
  const parts = text.split('/')
  if (parts.length < 1 || parts.length > 2 || !parts.every((p) => REPO_PART.test(p) && !p.includes('..'))) {
    throw usageError('bad-source', `invalid repository "${text}" in "${input}": expected ${example}`)
  }
  return text
}

/**
 * `hf://ORG/NAME[:QUANT][@REV][/PATH]`, `hf://datasets/ORG/NAME[@REV][/PATH]`, `ollama://[HOST/][NS/]MODEL[:TAG]`,
 * `modelscope://OWNER/NAME[@REV][/PATH]`; anything with http(s):// is a plain URL. PATH (a file,
 * a folder or a glob) is written as huggingface_hub's HfFileSystem writes it.
 */
export function parseSource(input: string, options: {insecure?: boolean; env?: NodeJS.ProcessEnv} = {}): SourceRef {
  const match = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(input.trim())
  if (!match) throw usageError('bad-source', `invalid source "${input}": ${meant(input.trim()) ?? 'give a URL (https://...), hf://ORG/NAME, ollama://MODEL[:TAG] or modelscope://OWNER/NAME'}`)
  const scheme = match[1].toLowerCase()
  const rest = match[2]
  if (scheme === 'http' || scheme === 'https') {
    const page = webPageHint(input.trim(), options.env)
    if (page) throw usageError('web-page', page)
    return {kind: 'url', url: input.trim()}
  }
  if (scheme === 'hf') {
    let body = rest
    let repoType: 'model' | 'dataset' = 'model'
    if (body.startsWith('datasets/')) {
      repoType = 'dataset'
      body = body.slice('datasets/'.length)
    } else if (body.startsWith('models/')) body = body.slice('models/'.length)
    else if (body.startsWith('spaces/')) throw usageError('bad-source', `invalid source "${input}": a Space is an app, not a model; mtune pulls models (hf://ORG/NAME) and datasets (hf://datasets/ORG/NAME)`)
    const {repo, revision, path, quant} = repoParts(body, input, 'main', 'hf://ORG/NAME[@REVISION][/PATH]', true)
    return {kind: 'hf', repoType, repo, revision, ...(path ? {path} : {}), ...(quant ? {quant} : {})}
  }
  if (scheme === 'modelscope') {
    const {repo, revision, path} = repoParts(rest, input, 'master', 'modelscope://OWNER/NAME[@REVISION][/PATH]')
    if (!repo.includes('/')) throw usageError('bad-source', `invalid ModelScope repository "${repo}" in "${input}": expected OWNER/NAME`)
    return {kind: 'modelscope', repo, revision, ...(path ? {path} : {})}
  }
  if (scheme === 'ollama') return parseOllama(rest, input, options.insecure)
  throw usageError('bad-scheme', `unsupported scheme "${scheme}" in "${input}": use https://, hf://, ollama:// or modelscope://`)
}

/** Written as a URL or source (SCHEME://...), not as a path on disk. */
export const hasScheme = (text: string): boolean => /^[a-z][a-z0-9+.-]*:\/\//i.test(text)

/**
 * The names after a source: paths in an hf:// or modelscope:// repo, each as the reference's own
 * /PATH (a file, a folder or a glob), as `hf download REPO FILE...` takes them. A URL or an Ollama
 * model takes none: said, with what was probably meant.
 */
export function filesAfter(ref: SourceRef, names: string[] | undefined, command: 'pull' | 'verify'): string[] | undefined {
  if (!names?.length) return undefined
  const source = names.find(hasScheme)
  // verify refuses a URL whatever follows it (it checks files on disk).
  if (ref.kind === 'url' && command === 'verify') return undefined
  if (ref.kind === 'url') {
    throw usageError('extra-argument', `one URL per ${command}, and "${names[0]}" is a second: other URLs of the same file go in --mirror URL (used at the same time); another file is another mtune ${command}`)
  }
  if (source || ref.kind === 'ollama') {
    throw usageError('extra-argument', `one ${ref.kind === 'ollama' ? 'model' : 'source'} per ${command}, and "${source ?? names[0]}" is a second${ref.kind === 'ollama' ? ' (an Ollama model is all of its blobs)' : ''}: run mtune ${command} once for each`)
  }
  return names.map((name) => repoPath(name)).filter((p): p is string => Boolean(p))
}

/** A model source written back as parseSource reads it (a revision with a slash as %2F, but the Hub's refs). */
export function sourceText(ref: Exclude<SourceRef, {kind: 'url'}>): string {
  if (ref.kind === 'ollama') return `ollama://${ref.host}/${ref.namespace}/${ref.model}:${ref.tag}`
  const revision = SLASHED_REF.test(ref.revision) ? ref.revision : ref.revision.replaceAll('/', '%2F')
  const repo = ref.kind === 'hf' ? `hf://${ref.repoType === 'dataset' ? 'datasets/' : ''}${ref.repo}${ref.quant ? `:${ref.quant}` : ''}` : `modelscope://${ref.repo}`
  return `${repo}@${revision}${ref.path ? `/${ref.path}` : ''}`
}

/**
 * What a reference typed as its own ecosystem's tool takes it most likely means: `hf download
 * ORG/NAME`, `ollama pull MODEL:TAG`, `wget host/path`.
 */
function meant(input: string): string | undefined {
  // Ollama's name for a GGUF on the Hub (`ollama pull hf.co/ORG/NAME:QUANT`), llama.cpp's too.
  const hub = /^(?:hf\.co|huggingface\.co)\/([\w.-]+\/[\w.-]+)(?::([\w.-]+))?$/i.exec(input)
  if (hub) {
    return `did you mean hf://${hub[1]}${hub[2] ? `:${hub[2]}` : ''} (into the Hugging Face cache), or ollama://${input} (into Ollama's store, as ollama pull ${input})?`
  }
  // A host (a dotted name ending in letters, or an address, maybe a port) before the first slash.
  if (/^([a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}|\d+(\.\d+){3})(:\d+)?\/\S*$/i.test(input)) return `did you mean https://${input}?`
  if (/^[A-Za-z0-9][\w.-]*\/[\w.-]+@[\w./%-]+$/.test(input)) return `did you mean hf://${input}? (modelscope://${input} for ModelScope)`
  if (/^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(input)) return `did you mean hf://${input}? (modelscope://${input} for ModelScope, ollama://${input} for Ollama)`
  if (/^[A-Za-z0-9][\w.-]*:[\w.-]+$/.test(input)) return `did you mean ollama://${input}?`
  return undefined
}

/** The Hub's refs that hold a slash (HfFileSystem's rule): any other revision ends at the first one. */
const SLASHED_REF = /^(refs\/pr\/\d+|refs\/convert\/[A-Za-z0-9._-]+)(?:\/(.*))?$/

/**
 * ORG/NAME[@REV][/PATH]. Without @, a third part starts the path. A branch with a slash in it
 * is written with %2F (HfFileSystem's way), since ORG/NAME@BRANCH/PATH reads as BRANCH, then PATH.
 */
function repoParts(body: string, input: string, defaultRevision: string, example: string, quants = false): {repo: string; revision: string; path?: string; quant?: string} {
  const at = body.indexOf('@')
  let name: string
  let revision = defaultRevision
  let path: string | undefined
  if (at >= 0) {
    name = body.slice(0, at)
    const after = body.slice(at + 1)
    const special = SLASHED_REF.exec(after)
    const slash = after.indexOf('/')
    const raw = special ? special[1] : slash >= 0 ? after.slice(0, slash) : after
    path = special ? special[2] : slash >= 0 ? after.slice(slash + 1) : undefined
    revision = decodePart(raw)
    if (!revision || /[\s\\]|\.\./.test(revision)) throw usageError('bad-source', `invalid revision "${revision}" in "${input}"`)
  } else {
    const parts = body.split('/')
    name = parts.slice(0, 2).join('/')
    path = parts.length > 2 ? parts.slice(2).join('/') : undefined
  }
  // ORG/NAME:QUANT, as llama.cpp's -hf and Ollama's hf.co/ORG/NAME:QUANT name one GGUF variant.
  const tagged = quants ? /^([^:]+):([A-Za-z0-9][A-Za-z0-9_.-]*)$/.exec(name) : null
  const quant = tagged?.[2]
  return {repo: repoName((tagged?.[1] ?? name).replace(/\/$/, ''), input, example), revision, path: repoPath(path, input), ...(quant ? {quant} : {})}
}

/** A path inside the repo: relative, no empty or .. parts (a trailing / is a folder: the same). */
function repoPath(path: string | undefined, input?: string): string | undefined {
  const trimmed = path?.replace(/\/+$/, '')
  if (!trimmed) return undefined
  if (trimmed.startsWith('/') || trimmed.includes('\\') || trimmed.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    throw usageError('bad-source', `invalid path "${path}"${input ? ` in "${input}"` : ''}: a file or folder of the repo, relative to its root`)
  }
  return trimmed
}

/** Ollama's rule: the tag is after the last ':' only if that comes after the last '/'. */
function parseOllama(rest: string, input: string, insecure = false): SourceRef {
  let name = rest
  let tag = 'latest'
  const colon = name.lastIndexOf(':')
  if (colon > name.lastIndexOf('/')) {
    tag = name.slice(colon + 1)
    name = name.slice(0, colon)
  }
  const parts = name.split('/')
  if (parts.length > 3 || parts.some((p) => !p)) throw usageError('bad-source', `invalid Ollama model "${rest}" in "${input}": expected [HOST/][NAMESPACE/]MODEL[:TAG]`)
  const [host, namespace, model] = parts.length === 3 ? parts : parts.length === 2 ? ['registry.ollama.ai', ...parts] : ['registry.ollama.ai', 'library', parts[0]]
  const valid = /^[A-Za-z0-9][A-Za-z0-9._-]*$/
  // As in Ollama, HOST/MODEL reads as NAMESPACE/MODEL: a registry needs its namespace too.
  if (parts.length === 2 && /:\d+$|^localhost$/.test(namespace)) {
    throw usageError('bad-source', `invalid Ollama model "${rest}" in "${input}": "${namespace}" looks like a registry, which needs a namespace too: ollama://${namespace}/library/${model}${tag === 'latest' ? '' : `:${tag}`}`)
  }
  if (!valid.test(namespace) || !valid.test(model) || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(tag) || !/^[A-Za-z0-9.-]+(:\d+)?$/.test(host)) {
    throw usageError('bad-source', `invalid Ollama model "${rest}" in "${input}": expected [HOST/][NAMESPACE/]MODEL[:TAG]`)
  }
  return {kind: 'ollama', scheme: insecure ? 'http' : 'https', host, namespace, model, tag}
}
