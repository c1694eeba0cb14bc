import {usageError} from '../errors.js'

export type SourceRef =
  | {kind: 'url'; url: string}
  | {kind: 'hf'; repoType: 'model' | 'dataset'; repo: string; revision: string}
  | {kind: 'ollama'; scheme: 'https' | 'http'; host: string; namespace: string; model: string; tag: string}
  | {kind: 'modelscope'; repo: string; revision: string}

const REPO_PART = /^[A-Za-z0-9][A-Za-z0-9._-]*$/

function repoName(text: string, input: string, example: string): string {
  const parts = text.split('/')
  if (parts.length < 1 || parts.length > 2 || !parts.every((p) => REPO_PART.test(p) && !p.includes('..'))) {
    throw usageError('bad-source', `invalid repository "${text}" in "${input}": expected ${example}`)
  }
  return text
}

/**
 * `hf://ORG/NAME[@REV]`, `hf://datasets/ORG/NAME[@REV]`, `ollama://[HOST/][NS/]MODEL[:TAG]`,
 * `modelscope://OWNER/NAME[@REV]`; anything with http(s):// is a plain URL.
 */
export function parseSource(input: string, options: {insecure?: boolean} = {}): SourceRef {
  const match = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(input.trim())
  if (!match) throw usageError('bad-source', `invalid source "${input}": give a URL (https://...), hf://ORG/NAME, ollama://MODEL[:TAG] or modelscope://OWNER/NAME`)
  const scheme = match[1].toLowerCase()
  const rest = match[2]
  if (scheme === 'http' || scheme === 'https') return {kind: 'url', url: input.trim()}
  if (scheme === 'hf') {
    const at = rest.indexOf('@')
    let path = at >= 0 ? rest.slice(0, at) : rest
    const revision = at >= 0 ? rest.slice(at + 1) : 'main'
    if (!revision || /[\s\\]|\.\./.test(revision)) throw usageError('bad-source', `invalid revision "${revision}" in "${input}"`)
    let repoType: 'model' | 'dataset' = 'model'
    if (path.startsWith('datasets/')) {
      repoType = 'dataset'
      path = path.slice('datasets/'.length)
    } else if (path.startsWith('models/')) path = path.slice('models/'.length)
    return {kind: 'hf', repoType, repo: repoName(path.replace(/\/$/, ''), input, 'hf://ORG/NAME[@REVISION]'), revision}
  }
  if (scheme === 'modelscope') {
    const at = rest.indexOf('@')
    const path = at >= 0 ? rest.slice(0, at) : rest
    const revision = at >= 0 ? rest.slice(at + 1) : 'master'
    if (!revision || /[\s\\]|\.\./.test(revision)) throw usageError('bad-source', `invalid revision "${revision}" in "${input}"`)
    const repo = repoName(path.replace(/\/$/, ''), input, 'modelscope://OWNER/NAME[@REVISION]')
    if (!repo.includes('/')) throw usageError('bad-source', `invalid ModelScope repository "${repo}" in "${input}": expected OWNER/NAME`)
    return {kind: 'modelscope', repo, revision}
  }
  if (scheme === 'ollama') return parseOllama(rest, input, options.insecure)
  throw usageError('bad-scheme', `unsupported scheme "${scheme}" in "${input}": use https://, hf://, ollama:// or modelscope://`)
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
