import {appendFileSync, existsSync, readFileSync, realpathSync} from 'node:fs'
import {join, resolve, sep} from 'node:path'
import {errorMessage} from '../errors.js'
import {mtuneCacheDir} from '../env-settings.js'
import {writeOwnFile} from '../own-files.js'
import {isHubFileUrl} from '../sources/hub-files.js'
import {withNetrc} from '../net/netrc.js'
import {bareUrl, urlId, validatorsOf} from '../transfer/previous-pull.js'

/**
 * What mtune pull put in place from a URL, kept so that `mtune verify FILE` can later tell
 * whether the file is still what came (a disk that rots, a tool that wrote into it, a copy cut
 * short) and `--repair` can fetch it again: a URL has no published digest to check against, as
 * a model's hub has. One JSON line per file in ~/.cache/mtune/pulled.jsonl (beside bench.json),
 * each appended in one write, so that the lines of pulls running at once do not mix; the last
 * line for a path is its record. The URL is kept without its user info and query: neither a
 * password nor a signed link's signature is written to disk (`withheld` says which it had).
 */
export interface PulledFile {
  /** The file, resolved (links followed). */
  path: string
  size: number
  sha256: string
  /** Where it came from, without user info and query. */
  url: string
  /** A digest of the whole URL, query included (transfer/previous-pull.ts): a re-run of the same pull is told by it. */
  urlId: string
  /**
   * What the URL had that is not kept: its query (a signed link's, say) or credentials written
   * into it (those of ~/.netrc are found there again). Then --repair cannot fetch it: the user
   * pulls it again with the whole URL.
   */
  withheld?: Array<'credentials' | 'query'>
  /** The digest was checked against one given or published (--sha256, a checksum= line, the Hub's). */
  checked?: true
  /** The server's validators then: a re-run of the pull keeps the file while they hold (transfer/previous-pull.ts). */
  etag?: string
  lastModified?: string
  /** When it was put in place (ISO 8601). */
  at: string
}

export const pullRecordPath = (env: NodeJS.ProcessEnv = process.env): string => join(mtuneCacheDir(env), 'pulled.jsonl')

/** A file just put in place, as the record keeps it; `validators`: the server's, as it answered. */
export function pulledFile(path: string, size: number, sha256: string, url: string, checked: boolean, validators: {etag?: string; lastModified?: string} = {}, at = new Date()): PulledFile {
  const given = new URL(url)
  const bare = bareUrl(url)
  const withheld: NonNullable<PulledFile['withheld']> = []
  const netrc = new URL(withNetrc(bare))
  if ((given.username || given.password) && (netrc.username !== given.username || netrc.password !== given.password)) withheld.push('credentials')
  // The Hub's file URLs serve the same file without their `?download=true`.
  if (given.search !== '' && !isHubFileUrl(url)) withheld.push('query')
  return {
    path: realPath(path),
    size,
    sha256,
    url: bare,
    urlId: urlId(url),
    ...(withheld.length ? {withheld} : {}),
    ...(checked ? {checked: true as const} : {}),
    ...validatorsOf(validators),
    at: at.toISOString(),
  }
}

/** A single URL's pull, recorded; a line for --debug when it could not be. */
export function rememberPull(result: {path: string; size: number; sha256: string; verified: boolean; alreadyComplete: boolean; etag?: string; lastModified?: string}, url: string, debug?: (line: string) => void): void {
  // A re-run that kept the file adds no line: a job at every boot would grow the record forever.
  const known = result.alreadyComplete ? pulledRecordOf(result.path) : undefined
  if (known && known.sha256 === result.sha256 && known.urlId === urlId(url)) return
  const why = recordPulled([pulledFile(result.path, result.size, result.sha256, url, result.verified, result)])
  if (why) debug?.(why)
}

const realPath = (path: string): string => {
  try {
    return realpathSync(path)
  } catch {
    return resolve(path)
  }
}

/**
 * Append the files to the record. Never fails the pull that calls it: a home that cannot be
 * written costs only the later check. Returns why nothing was recorded, for --debug.
 */
export function recordPulled(files: PulledFile[], env: NodeJS.ProcessEnv = process.env): string | undefined {
  return files.length === 0 ? undefined : appendRecord(files, "mtune verify will not know the file's sha256", env)
}

/** Lines appended to the record, as its owner; why they could not be, with what that costs. */
function appendRecord(lines: object[], lost: string, env: NodeJS.ProcessEnv): string | undefined {
  const path = pullRecordPath(env)
  try {
    writeOwnFile(path, () => appendFileSync(path, lines.map((l) => `${JSON.stringify(l)}\n`).join(''), {mode: 0o600}))
    return undefined
  } catch (error) {
    return `could not record the pull in ${path} (${errorMessage(error)}): ${lost}`
  }
}

/** The last record of the file at `path` (links followed), if mtune pull put it there. */
export function pulledRecordOf(path: string, env: NodeJS.ProcessEnv = process.env): PulledFile | undefined {
  const real = realPath(path)
  return readRecords(real, (p) => p === real, env).get(real)
}

/**
 * The last record of each file under `dir` (at any depth), those there now and those gone; no
 * record at all when none is there any more: a folder whose files were all removed is no longer
 * that pull's, and a shard gone from beside the others is missing.
 */
export function pulledRecordsUnder(dir: string, env: NodeJS.ProcessEnv = process.env): PulledFile[] {
  const records = [...recordsInside(dir, env).found.values()]
  return records.some((f) => existsSync(f.path)) ? records : []
}

/**
 * pulledRecordOf for many files under `dir`, the record read once: a list of thousands of URLs
 * asked it per file, each time reading a record that grows with every pull.
 */
export function pulledRecordsIn(dir: string, env: NodeJS.ProcessEnv = process.env): (path: string) => PulledFile | undefined {
  const {inside, found} = recordsInside(dir, env)
  return (path) => {
    const real = realPath(path)
    // A link inside `dir` may lead out of it.
    return real.startsWith(inside) ? found.get(real) : pulledRecordOf(path, env)
  }
}

/** The last record of each file under `dir` (links followed), by path; `inside`: that directory with its separator. */
function recordsInside(dir: string, env: NodeJS.ProcessEnv): {inside: string; found: Map<string, PulledFile>} {
  const inside = realPath(dir) + sep
  return {inside, found: readRecords(inside, (p) => p.startsWith(inside), env)}
}

/** The records whose path `keep` takes, the last line for a path winning; lines without `needle` are not parsed. */
function readRecords(needle: string, keep: (path: string) => boolean, env: NodeJS.ProcessEnv): Map<string, PulledFile> {
  const found = new Map<string, PulledFile>()
  for (const f of linesWith(JSON.stringify(needle).slice(1, -1), env) as PulledFile[]) {
    if (typeof f.path === 'string' && keep(f.path) && /^[0-9a-f]{64}$/.test(f.sha256) && typeof f.url === 'string') found.set(f.path, f)
  }
  return found
}

/**
 * The record's lines that hold `text` (as JSON writes it), parsed, in order: the record may hold
 * many thousands of lines, and most are not wanted. A line cut short (a full disk while
 * appending) is left out; the others still count.
 */
function linesWith(text: string, env: NodeJS.ProcessEnv): unknown[] {
  let all: string
  try {
    all = readFileSync(pullRecordPath(env), 'utf8')
  } catch {
    return []
  }
  const out: unknown[] = []
  for (const line of all.split('\n')) {
    if (!line.includes(text)) continue
    try {
      out.push(JSON.parse(line))
    } catch {
      // Cut short.
    }
  }
  return out
}

/**
 * A model pulled into a plain tree (pull --local-dir) where nothing else says what it is:
 * ModelScope leaves no record in the tree, as huggingface_hub's .cache/huggingface does, so
 * `mtune verify DIR` had nothing to check it against. Kept in the same file, one line per
 * tree: `verify DIR` checks it as its source, at that revision, on that endpoint.
 */
export interface PulledModelDir {
  /** The tree, resolved (links followed). */
  dir: string
  /** modelscope://OWNER/NAME, without the revision. */
  model: string
  revision: string
  /** The --endpoint it was pulled from, where one was given. */
  endpoint?: string
  at: string
}

/** Record a model's tree, unless the same record is the last one for it; why it could not be, for --debug. */
export function rememberModelDir(dir: string, model: string, revision: string, endpoint?: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const real = realPath(dir)
  const known = modelDirRecord(real, env)
  if (known && known.model === model && known.revision === revision && known.endpoint === endpoint) return undefined
  const line: PulledModelDir = {dir: real, model, revision, ...(endpoint ? {endpoint} : {}), at: new Date().toISOString()}
  return appendRecord([line], `mtune verify ${real} will not know its source`, env)
}

/** The last record of the model pulled into `dir` (pull --local-dir), if mtune pull put one there. */
export function modelDirRecord(dir: string, env: NodeJS.ProcessEnv = process.env): PulledModelDir | undefined {
  const real = realPath(dir)
  let found: PulledModelDir | undefined
  for (const m of linesWith(`"dir":${JSON.stringify(real)}`, env) as PulledModelDir[]) {
    if (m.dir === real && typeof m.model === 'string' && /^modelscope:\/\/[^/@\s]+\/[^/@\s]+$/.test(m.model) && typeof m.revision === 'string') found = m
  }
  return found
}
