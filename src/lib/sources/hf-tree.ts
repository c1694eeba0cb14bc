import {ExitCode, MtuneError} from '../errors.js'
import {apiGet, parseJson, type ApiAnswer, type ApiContext} from './api.js'

/** A file of a Hub repo, as the revision's `siblings` list names it. */
export interface Sibling {
  rfilename: string
  size?: number
  blobId?: string
  lfs?: {sha256?: string; size?: number}
}

/**
 * Past this many files the revision's `siblings` list is not to be trusted: the Hub truncates it
 * for large repos (server-side caching; none at all past 100,000 files), and huggingface_hub's
 * snapshot_download lists the tree instead beyond 1,000, as it does when none are listed. A
 * dataset pulled from a truncated list would miss files, with nothing said.
 */
export const SIBLINGS_TRUSTED = 1000

/** A page the tree listing may run to: a million files at the Hub's thousand a page. */
const MAX_PAGES = 1000

/** An entry of `/api/{models|datasets}/REPO/tree/REV?recursive=true` (protocols.md). */
interface TreeEntry {
  type?: string
  path?: string
  size?: number
  oid?: string
  lfs?: {oid?: string; size?: number}
}

/**
 * Every file of the repo at `commit`, from the tree listing, page after page (its `Link: <...>;
 * rel="next"` header), in the shape of the siblings list. `refused`: the error for an answer
 * other than 200, as the Hub's errors are said (hf.ts).
 */
export async function listTree(ctx: ApiContext, at: {endpoint: string; kind: 'models' | 'datasets'; repo: string; commit: string; what: string}, refused: (answer: ApiAnswer) => MtuneError): Promise<Sibling[]> {
  const {endpoint, kind, repo, commit, what} = at
  const files: Sibling[] = []
  const seen = new Set<string>()
  let url: string | undefined = `${endpoint}/api/${kind}/${repo}/tree/${commit}?recursive=true`
  while (url) {
    if (seen.has(url) || seen.size >= MAX_PAGES) throw new MtuneError('bad-answer', `${what}: the Hub's file listing does not end (page ${seen.size + 1}); try again later`, ExitCode.remote)
    seen.add(url)
    const answer = await apiGet(ctx, url)
    if (answer.status !== 200) throw refused(answer)
    const entries = parseJson<TreeEntry[]>(answer, what)
    if (!Array.isArray(entries)) throw new MtuneError('bad-answer', `${what}: the Hub's file listing is not a list`, ExitCode.remote)
    for (const e of entries) {
      if (e?.type !== 'file' || typeof e.path !== 'string') continue
      files.push({rfilename: e.path, size: e.size, blobId: e.oid, ...(e.lfs ? {lfs: {sha256: e.lfs.oid, size: e.lfs.size}} : {})})
    }
    url = nextPage(answer.headers.link, endpoint)
  }
  return files
}

/**
 * The next page's URL from a Link header, asked of `endpoint` whatever host the link names: a
 * mirror or an mtune cache passes the Hub's own absolute links through, and the token goes to
 * the endpoint alone.
 */
export function nextPage(link: string | string[] | undefined, endpoint: string): string | undefined {
  const header = Array.isArray(link) ? link.join(', ') : link
  const target = header && /<([^>]+)>\s*;(?:[^,]*;)?\s*rel="?next"?/i.exec(header)?.[1]
  if (!target) return undefined
  const base = new URL(endpoint)
  const next = new URL(target, `${base.origin}/`)
  if (next.origin === base.origin && next.pathname.startsWith(`${base.pathname.replace(/\/$/, '')}/api/`)) return next.href
  const at = next.pathname.indexOf('/api/')
  // Stopping here would pull a part of the repo as if it were the whole.
  if (at < 0) throw new MtuneError('bad-answer', `the Hub's file listing names a next page that is not in its API (${next.pathname}); check the endpoint (--endpoint, HF_ENDPOINT)`, ExitCode.remote)
  return `${endpoint.replace(/\/$/, '')}${next.pathname.slice(at)}${next.search}`
}
