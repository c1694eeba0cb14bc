import {existsSync, statSync} from 'node:fs'
import {basename, resolve} from 'node:path'
import {ExitCode, MtuneError, errorMessage, usageError} from '../errors.js'
import {aria2Beside} from '../transfer/adopt.js'
import {DEFAULTS, type PullEvents} from '../transfer/pull-types.js'
import {closeDispatcher, createDispatcher} from '../net/dispatcher.js'
import {peekFile} from '../net/probe.js'
import {redact} from '../net/request.js'
import {classifyNetworkError} from '../net/retry-policy.js'
import {probeCache} from './cache-probe.js'
import {runPlan, type FileResult, type RunOptions} from './run-plan.js'
import {cacheCannotHelp, theCache} from './through-cache.js'
import {cachedForm} from './url-through-cache.js'
import {hubFileHeaders} from './hub-files.js'
import {fewNames} from '../units.js'
import {sha256File} from '../transfer/destination.js'
import type {Plan, PlannedFile} from './plan.js'
import {safeJoin} from './safe-names.js'
import {pulledFile, pulledRecordsIn, recordPulled, type PulledFile} from '../verify/pull-record.js'
import {urlId} from '../transfer/previous-pull.js'

/**
 * `mtune pull -i FILE`: a list of URLs, as aria2c -i and wget -i take one, pulled as one plan into
 * one directory (several files at once, one connection budget, one progress line, the space for
 * all of them checked first). The format is aria2c's, in the part that matters here: a URL per
 * line, blank lines and `#` comments ignored, and indented `out=NAME` and `checksum=sha-256=HEX`
 * lines giving the line above its name and digest. A sha256sum line (`HEX  URL`) gives both too.
 */

export interface ListedUrl {
  url: string
  /** The file's name in the directory: out=, else the URL's last segment. */
  name: string
  sha256?: string
  line: number
}

const HEX64 = /^[0-9a-fA-F]{64}$/

/** Pure: the entries of a list, or one usage error naming the line at fault. */
export function parseUrlList(text: string, file: string): ListedUrl[] {
  const out: ListedUrl[] = []
  const bad = (line: number, why: string) => usageError('bad-url-list', `${file}, line ${line}: ${why}`)
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = i + 1
    if (!raw.trim() || raw.trim().startsWith('#')) continue
    if (/^\s/.test(raw)) {
      // An option of the URL above it, as aria2c writes them.
      const last = out.at(-1)
      const option = /^\s+([\w-]+)=(.*)$/.exec(raw)
      if (!last || !option) throw bad(line, `"${raw.trim()}" is not an option of a URL above it (out=NAME or checksum=sha-256=HEX, indented)`)
      const [, key, value] = option
      if (key === 'out') last.name = value.trim()
      else if (key === 'checksum') {
        const digest = /^sha-?256=([0-9a-fA-F]{64})$/i.exec(value.trim())
        if (!digest) throw bad(line, `checksum=${value.trim()}: give checksum=sha-256=HEX (64 hex digits)`)
        last.sha256 = digest[1].toLowerCase()
      } else throw bad(line, `${key}= is not an option mtune reads here: out=NAME and checksum=sha-256=HEX are`)
      continue
    }
    // A sha256sum line with a URL for its name: HEX  URL (or HEX *URL).
    const summed = /^([0-9a-fA-F]{64})\s+\*?(\S+)\s*$/.exec(raw)
    const [url, sha256] = summed ? [summed[2], summed[1].toLowerCase()] : [raw.trim(), undefined]
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      throw bad(line, `"${url}" is not a URL`)
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw bad(line, `${url}: only http:// and https:// URLs are pulled from a list (hf://, ollama://, modelscope:// are one pull each)`)
    let name = ''
    try {
      name = decodeURIComponent(basename(parsed.pathname))
    } catch {
      name = basename(parsed.pathname)
    }
    out.push({url, name, ...(sha256 && HEX64.test(sha256) ? {sha256} : {}), line})
  }
  if (!out.length) throw usageError('bad-url-list', `${file} lists no URL: one per line (# for comments)`)
  for (const e of out) if (!e.name) throw bad(e.line, `${e.url} names no file: give it one with an indented out=NAME line below it`)
  const byName = new Map<string, {line: number; url: string}>()
  for (const e of out) {
    const first = byName.get(e.name)
    if (first?.url === e.url) throw bad(e.line, `the same URL as line ${first.line}: list each file once`)
    if (first !== undefined) throw bad(e.line, `${e.name} is already the name of line ${first.line}'s file: give one of them another with out=NAME`)
    byName.set(e.name, {line: e.line, url: e.url})
  }
  return out
}

/**
 * The list as a plan into `dir`. A file already there is skipped when its digest is given and it
 * matches, or, with none given, when an earlier mtune pull of that URL put it there and it still
 * has the sha256 recorded then (a re-run of the list); any other file already there is refused
 * (named) unless `force`, as a plain pull refuses one.
 */
export async function urlListPlan(entries: ListedUrl[], file: string, dir: string, force: boolean, env: NodeJS.ProcessEnv = process.env): Promise<Plan> {
  const root = resolve(dir)
  const files: PlannedFile[] = []
  const taken: string[] = []
  const changed: string[] = []
  // Read when the first file is found there, once for the whole list.
  let records: ((path: string) => PulledFile | undefined) | undefined
  const recordOf = (path: string) => (records ??= pulledRecordsIn(root, env))(path)
  for (const e of entries) {
    let dest: string
    try {
      dest = safeJoin(root, e.name)
    } catch {
      throw usageError('bad-url-list', `${file}, line ${e.line}: the name ${JSON.stringify(e.name)} would leave ${root}: give a plain one with out=NAME`)
    }
    let present = false
    // aria2c's partial download in its place is no file to keep or refuse: a pull takes it over (adopt.ts).
    if (existsSync(dest) && !aria2Beside(dest)) {
      // Without a digest in the list, the one an earlier mtune pull of this URL recorded there: a re-run keeps what it pulled.
      const recorded = e.sha256 ? undefined : recordOf(dest)
      const digest = e.sha256 ?? (recorded?.urlId === urlId(e.url) ? recorded.sha256 : undefined)
      if (digest && (await sha256File(dest)) === digest) present = true
      else if (!force) (digest && !e.sha256 ? changed : taken).push(e.name)
    }
    // Sizes come with the answers; a file kept has its own. A Hub file URL gets the Hub token, as
    // its single pull does (hub-files.ts).
    const headers = hubFileHeaders(e.url, env)
    files.push({name: e.name, url: e.url, dest, sha256: e.sha256, present, ...(present ? {size: statSync(dest).size} : {}), ...(headers ? {headers} : {})})
  }
  if (changed.length) {
    const one = changed.length === 1
    throw new MtuneError('exists', `${fewNames(changed)} in ${root} ${one ? 'is' : 'are'} no longer what mtune pulled from ${one ? 'its' : 'their'} URL${one ? '' : 's'} (changed on disk since): mtune verify ${root} --repair fetches ${one ? 'it' : 'them'} again, or --force`, ExitCode.integrity)
  }
  if (taken.length) {
    throw new MtuneError('exists', `${fewNames(taken)} already ${taken.length === 1 ? 'exists' : 'exist'} in ${root} with nothing to check ${taken.length === 1 ? 'it' : 'them'} against: --force replaces ${taken.length === 1 ? 'it' : 'them'} (or give checksum=sha-256=HEX in the list, and a file that matches is kept)`, ExitCode.usage)
  }
  const elsewhere = {full: 'pull the list onto another disk: -o DIR/', unwritable: 'choose an -o DIR/ you can write'}
  return {source: `${file} (${entries.length} URL${entries.length === 1 ? '' : 's'})`, root, layout: 'directory', files, headers: {}, finish: async () => {}, notes: [], elsewhere}
}

/**
 * `pull -i LIST --dry-run`: each file not there yet asked for one byte (eight at a time), so the
 * plan shows its size and the list's total, as a single URL's dry run does. A URL that does not
 * answer is said in a note with the reason (the pull would go on without it) and keeps no size.
 */
export async function listSizes(plan: Plan, stallTimeoutMs = DEFAULTS.stallTimeoutMs): Promise<Plan> {
  const dispatcher = createDispatcher({stallTimeoutMs})
  const wanted = plan.files.filter((f) => !f.present && f.size === undefined)
  const failed = new Map<PlannedFile, string>()
  const sized = new Map<PlannedFile, number>()
  let next = 0
  const ask = async () => {
    while (next < wanted.length) {
      const f = wanted[next++]!
      try {
        const {size} = await peekFile(dispatcher, f.url, f.headers ?? {})
        if (size !== undefined) sized.set(f, size)
      } catch (error) {
        failed.set(f, `${f.name}: ${redact(f.url)} did not answer as a file (${classifyNetworkError(error).message}): the pull would go on without it`)
      }
    }
  }
  try {
    await Promise.all(Array.from({length: Math.min(8, wanted.length)}, ask))
  } finally {
    await closeDispatcher(dispatcher)
  }
  return {...plan, files: plan.files.map((f) => (sized.has(f) ? {...f, size: sized.get(f)} : f)), notes: [...plan.notes, ...wanted.flatMap((f) => failed.get(f) ?? [])]}
}

/**
 * The list pulled: through the cache where one is set and its origins cover some of the URLs
 * (as a single URL's pull goes), else directly. A cache that fails the pull leaves the list to be
 * pulled directly, with one warning; what came through it stays on disk and is resumed.
 * The files pulled go into mtune's record, for mtune verify.
 */
export async function runUrlList(plan: Plan, cache: string | undefined, options: Omit<RunOptions, 'dispatcher'>, events: PullEvents): Promise<{files: FileResult[]; via: 'cache' | 'origin'; seconds: number}> {
  const started = performance.now()
  const dispatcher = createDispatcher({stallTimeoutMs: options.stallTimeoutMs ?? DEFAULTS.stallTimeoutMs})
  try {
    const done = await pullList(plan, cache, {...options, dispatcher}, events)
    remember(plan, done.files, events)
    return {...done, seconds: (performance.now() - started) / 1000}
  } catch (error) {
    // The files of a list that did arrive are in place, and worth checking later all the same.
    const results = error instanceof MtuneError ? error.details?.results : undefined
    if (Array.isArray(results)) remember(plan, results as FileResult[], events)
    throw error
  } finally {
    await closeDispatcher(dispatcher)
  }
}

/** The files pulled (not those kept), in mtune's record for verify (pull-record.ts), under the URLs the list gave. */
function remember(plan: Plan, results: FileResult[], events: PullEvents): void {
  const listed = new Map(plan.files.map((f) => [f.dest, f]))
  const pulled = results.flatMap((r) => {
    const f = listed.get(r.path)
    return f && !r.skipped && r.sha256 ? [pulledFile(r.path, r.size, r.sha256, f.url, Boolean(f.sha256), r)] : []
  })
  const why = recordPulled(pulled)
  if (why) events.debug?.(why)
}

async function pullList(plan: Plan, cache: string | undefined, run: RunOptions, events: PullEvents): Promise<{files: FileResult[]; via: 'cache' | 'origin'}> {
  const direct = async () => ({files: await runPlan(plan, run, events), via: 'origin' as const})
  if (!cache) return direct()
  // A file is renamed into place only once complete (and checked): those that appear during a
  // failed pull through the cache are done, and the pull that takes over keeps them.
  const there = new Set(plan.files.filter((f) => existsSync(f.dest)).map((f) => f.dest))
  const done = (): Plan => ({...plan, files: plan.files.map((f) => (!f.present && !there.has(f.dest) && existsSync(f.dest) ? {...f, present: true, size: statSync(f.dest).size} : f))})
  const probe = await probeCache(run.dispatcher, cache, {timeoutMs: 5_000, signal: run.signal})
  if (!probe.mtune) {
    events.debug?.(`${theCache(cache)} does not answer: the list is pulled directly`)
    return direct()
  }
  let routed = 0
  const files = plan.files.map((f) => {
    // A file with the Hub's token stays off a shared cache, which would serve it to anyone.
    const form = f.headers ? undefined : cachedForm(f.url, cache, probe.origins)
    if (form) routed++
    return form ? {...f, url: form.url} : f
  })
  if (!routed) return direct()
  events.info?.(`through ${theCache(cache)}: ${routed} of ${plan.files.length} URLs are under its origins`)
  try {
    return {files: await runPlan({...plan, files}, run, events), via: 'cache'}
  } catch (error) {
    if (cacheCannotHelp(error) || run.signal?.aborted) throw error
    events.warn?.(`${theCache(cache)} failed (${errorMessage(error)}): pulling the list directly; what is on disk is kept`)
    return {files: await runPlan(done(), run, events), via: 'origin'}
  }
}
