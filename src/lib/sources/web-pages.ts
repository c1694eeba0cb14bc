import {setting} from '../env-settings.js'

/**
 * The web pages people copy from the browser instead of a file's URL: a Hub's page of a file
 * (…/blob/main/x.gguf) or of a repo answers 200 with HTML, which a plain download saves as the
 * "model" (wget's classic). Said before anything is fetched, with the reference that works.
 */

/** First path parts of huggingface.co that are the site's own pages, not ORG/NAME. */
const HF_SITE = new Set(['api', 'spaces', 'docs', 'blog', 'models', 'settings', 'login', 'join', 'pricing', 'tasks', 'learn', 'papers', 'collections', 'organizations', 'chat', 'posts', 'enterprise', 'new', 'search'])
const OLLAMA_SITE = new Set(['api', 'blog', 'docs', 'download', 'search', 'settings', 'signin', 'signup', 'public', 'models', 'blobs', 'v2'])

/** A URL's part decoded (%2F is a slash), or as it is where it is no valid escape. */
export const decodePart = (part: string): string => {
  try {
    return decodeURIComponent(part)
  } catch {
    return part
  }
}

/**
 * huggingface.co (hf.co): /[datasets/]ORG/NAME[/blob|tree/REV[/PATH]]. On a mirror (HF_ENDPOINT)
 * only the blob and tree pages: its host may serve other files at two-part paths.
 */
function huggingFace(parts: string[], input: string, hub: boolean): string | undefined {
  const dataset = parts[0] === 'datasets'
  const [org, name, kind, rev, ...path] = dataset ? parts.slice(1) : parts
  if (!org || !name || (!dataset && HF_SITE.has(org))) return undefined
  const repo = `hf://${dataset ? 'datasets/' : ''}${org}/${name}`
  const at = rev && rev !== 'main' ? `@${rev.replaceAll('/', '%2F')}` : ''
  const inside = path.length ? `/${path.join('/')}` : ''
  if (kind === 'blob' && rev && path.length) {
    const resolve = input.replace(/\/blob\//, '/resolve/').replace(/[?#].*$/, '')
    return `${input} is the file's page on the Hub, not the file: pull ${resolve}, or ${repo}${at}${inside} into the Hugging Face cache`
  }
  if ((kind === undefined && hub) || (kind === 'tree' && rev)) {
    return `${input} is the ${dataset ? 'dataset' : 'model'}'s page on the Hub, not a file: pull ${repo}${at}${inside} (into the Hugging Face cache; --include chooses files)`
  }
  return undefined
}

/** modelscope.cn: /models/OWNER/NAME[/summary|/files|/file/view/REV/PATH]; /resolve/ is a file. */
function modelScope(parts: string[], input: string): string | undefined {
  const [models, owner, name, kind, ...rest] = parts
  if (models !== 'models' || !owner || !name) return undefined
  const view = kind === 'file' && rest[0] === 'view' && rest.length >= 3
  if (kind !== undefined && kind !== 'summary' && kind !== 'files' && !view) return undefined
  const at = view && rest[1] !== 'master' ? `@${rest[1]}` : ''
  const inside = view ? `/${rest.slice(2).join('/')}` : ''
  return `${input} is the model's page on ModelScope, not a file: pull modelscope://${owner}/${name}${at}${inside}`
}

/** ollama.com: /library/MODEL[:TAG][/tags] or /USER/MODEL[:TAG][/tags]. */
function ollama(parts: string[], input: string): string | undefined {
  const [namespace, model, extra] = parts
  if (!namespace || !model || OLLAMA_SITE.has(namespace) || (extra !== undefined && extra !== 'tags') || parts.length > 3) return undefined
  return `${input} is the model's page on ollama.com, not a file: pull ollama://${namespace === 'library' ? '' : `${namespace}/`}${model}`
}

/**
 * A URL on the Hugging Face Hub: huggingface.co or hf.co (`hub`), or the HF_ENDPOINT mirror
 * (below its path), with its path's parts after that, decoded.
 */
export function onHub(input: string, env: NodeJS.ProcessEnv = process.env): {parts: string[]; hub: boolean} | undefined {
  if (!URL.canParse(input)) return undefined
  const url = new URL(input)
  const host = url.hostname.toLowerCase().replace(/^www\./, '')
  const parts = url.pathname.split('/').filter(Boolean).map(decodePart)
  if (host === 'huggingface.co' || host === 'hf.co') return {parts, hub: true}
  const endpoint = setting(env, 'HF_ENDPOINT')
  const mirror = endpoint && URL.canParse(endpoint) ? new URL(endpoint) : undefined
  const prefix = mirror?.pathname.split('/').filter(Boolean) ?? []
  if (mirror && url.host === mirror.host && prefix.every((p, i) => parts[i] === p)) return {parts: parts.slice(prefix.length), hub: false}
  return undefined
}

/** Why this URL is a web page about a model rather than a file, with what to pull instead; else undefined. */
export function webPageHint(input: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const hf = onHub(input, env)
  if (hf) return huggingFace(hf.parts, input, hf.hub)
  if (!URL.canParse(input)) return undefined
  const url = new URL(input)
  const host = url.hostname.toLowerCase().replace(/^www\./, '')
  const parts = url.pathname.split('/').filter(Boolean).map(decodePart)
  if (host === 'modelscope.cn' || host === 'modelscope.ai') return modelScope(parts, input)
  if (host === 'ollama.com') return ollama(parts, input)
  return undefined
}
