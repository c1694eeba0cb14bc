import {existsSync, realpathSync, statSync} from 'node:fs'
import {basename, dirname, relative, resolve} from 'node:path'
import {MtuneError, usageError} from '../errors.js'
import {safeJoin} from '../sources/safe-names.js'
import {fewNames} from '../units.js'
import {CHECKSUM_LISTS, checksumListIn, parseChecksumList, type ListedDigest} from './checksum-list.js'
import {interruptedAt, type Expected, type Expectations} from './expect.js'
import {addressedFile, hfCacheFolder, storeRoot} from './store-paths.js'
import {byHeader, noDigest, weightTree} from './by-header.js'
import {localDirRecord} from './local-dir-record.js'
import {pulledRecordOf, pulledRecordsUnder, type PulledFile} from './pull-record.js'
import {shellWord} from '../ui/shell-words.js'
import {readText} from '../text-file.js'
import {parseSha256} from '../transfer/validate.js'
import {filesUnder} from '../fs-dirs.js'

/** The checksum list of each folder read so far (or that it has none). */
type ListsRead = Map<string, ReturnType<typeof checksumListIn>>

const listIn = (dir: string, lists: ListsRead) => {
  if (!lists.has(dir)) lists.set(dir, checksumListIn(dir))
  return lists.get(dir)
}

/**
 * A plain file against --sha256, the FILE.sha256 beside it, or its line in a checksum list beside
 * it (SHA256SUMS, as `sha256sum -c` reads it); a directory against the checksum list in it.
 * `lists`: the folders' lists already read, for several files of one folder.
 */
export function plainFile(path: string, sha256?: string, lists: ListsRead = new Map()): Expectations {
  const full = resolve(path)
  // Checked first: what a directory lacks is a source, not a digest.
  if (existsSync(full) && statSync(full).isDirectory()) {
    const cached = hfCacheFolder(full)
    if (cached) throw usageError('is-directory', `${path} is a directory: the Hugging Face cache's copy of ${cached.repo}; check it with: ${cached.command}`)
    const store = storeRoot(full)
    if (store) throw usageError('is-directory', `${path} is ${store}`)
    if (sha256 !== undefined) throw usageError('bad-flag', `${path} is a directory: --sha256 is for one file; give the file, or put its SHA256SUMS in the directory`)
    const list = checksumListIn(full)
    if (list) return listedFiles(full, list)
    // A --local-dir tree's own record of what huggingface_hub (or mtune) fetched into it.
    const record = localDirRecord(full, path)
    if (record) return record
    // Files mtune pull put in it from URLs (pull -i LIST -o DIR/).
    const pulled = pulledRecordsUnder(full)
    if (pulled.length) return fromPullRecords(full, path, pulled)
    // Weights with no digest anywhere: complete or cut short, by their own headers.
    const weights = weightTree(full)
    if (weights) return {...weights, notes: [...weights.notes, `for the bytes themselves, check it against its hub: mtune verify hf://ORG/NAME --local-dir ${path} (or modelscope://)`]}
    throw usageError(
      'is-directory',
      `${path} is a directory: give a file, or put the publisher's SHA256SUMS in it to check what it lists, or for a model pulled into it with --local-dir, its source: mtune verify hf://ORG/NAME --local-dir ${path} (or modelscope://)`,
    )
  }
  // The list itself, as `sha256sum -c SHA256SUMS` is given it: what it names.
  if (sha256 === undefined && CHECKSUM_LISTS.includes(basename(full)) && existsSync(full)) {
    return listedFiles(dirname(full), {path: full, entries: parseChecksumList(readText(full))})
  }
  // FILE.sha256 itself (`sha256sum -c FILE.sha256`): the files its lines name, or for a bare
  // digest, FILE.
  if (sha256 === undefined && full.endsWith('.sha256') && statOf(full)?.isFile()) {
    const entries = parseChecksumList(readText(full))
    return entries.length ? listedFiles(dirname(full), {path: full, entries}) : plainFile(full.slice(0, -'.sha256'.length), undefined, lists)
  }
  let expected = sha256 === undefined ? undefined : parseSha256(sha256)
  let checksumList: string | undefined
  if (expected === undefined) {
    const beside = `${full}.sha256`
    const text = existsSync(beside) ? readText(beside) : undefined
    expected = text ? /^\s*\\?([0-9a-fA-F]{64})\b/.exec(text)?.[1]?.toLowerCase() : undefined
    if (text !== undefined && !expected) throw usageError('bad-digest', `${beside} holds no sha256 (sha256sum's format: HEX  NAME): fix it or give --sha256 HEX`)
  }
  if (expected === undefined) {
    const list = listIn(dirname(full), lists)
    expected = list?.entries.find((e) => e.name === basename(full))?.sha256
    if (expected) checksumList = list!.path
  }
  // What mtune pull recorded when it put the file here (from a URL, which publishes no digest).
  const pulled = expected === undefined ? pulledRecordOf(full) : undefined
  if (pulled) return fromPullRecords(dirname(full), path, [pulled], true)
  // A blob named for its digest (the Ollama store's, the Hugging Face cache's, or a link to one).
  const addressed = expected === undefined && existsSync(full) ? addressedFile(full) : undefined
  if (addressed) {
    const files = [{name: basename(full), path: full, ...addressed.digest}]
    return {kind: 'file', against: 'disk', root: dirname(full), files, problems: [], notes: addressed.note ? [addressed.note] : [], fix: addressed.fix}
  }
  const header = expected === undefined ? byHeader(full) : undefined
  if (header) return header
  if (!expected) {
    throw usageError(
      'no-digest',
      `nothing to check ${path} against: give --sha256 HEX, or put ${basename(full)}.sha256 beside it (sha256sum ${basename(full)} > ${basename(full)}.sha256), or the publisher's SHA256SUMS that lists it`,
    )
  }
  const files = [{name: basename(full), path: full, sha256: expected}]
  return {kind: 'file', against: checksumList ? 'list' : 'sha256', checksumList, root: dirname(full), files, problems: [], notes: []}
}

const statOf = (path: string) => statSync(path, {throwIfNoEntry: false})

/** The fix for a file whose URL mtune pull did not record whole: its `withheld` parts, to give again. */
export const pullWithWholeUrl = (path: string, sha256: string, withheld: string[]): string =>
  `pull it again with its whole URL (${withheld.length ? `its ${withheld.join(' and ')} ${withheld.length > 1 ? 'were' : 'was'}` : 'parts of it were'} not recorded): mtune pull URL -o ${path} --sha256 ${sha256} --force`

/**
 * Files mtune pull put in place from URLs, against the sha256 it found then: `shown` is the file
 * (one record) or the directory they are in. A URL the record has whole (no query or
 * credentials left out) is what --repair fetches again.
 */
function fromPullRecords(root: string, shown: string, records: PulledFile[], single = false): Expectations {
  // Named from the directory as the record has it (links followed), or the file as given.
  const real = realpathSync(root)
  const all = records.map((r) => ({name: single ? basename(shown) : relative(real, r.path), path: r.path, size: r.size, sha256: r.sha256, ...(r.withheld?.length ? {withheld: r.withheld} : {url: r.url})}))
  // Gone, with its part file there: a pull of it again, cut or running now. Said so rather than
  // missing, and resumed by --repair.
  const cut = all.filter((f) => !existsSync(f.path) && existsSync(`${f.path}.part`))
  const files = all.filter((f) => !cut.includes(f))
  const problems = cut.map((f) => interruptedAt(f.name, `${f.path}.part`))
  const resume = cut.length ? {resume: cut} : {}
  const one = single ? records[0] : undefined
  if (one) {
    const url = one.withheld?.includes('query') ? `${one.url}?…` : one.url
    const checked = one.checked ? ', which matched the digest it was checked against then' : ''
    const note = `${basename(shown)}: checked against the sha256 mtune pull found on ${one.at.slice(0, 10)}, pulling it from ${url}${checked}`
    // With the whole URL on record, --repair fetches it (the fix verify-output.ts names).
    const fix = one.withheld?.length ? {fix: pullWithWholeUrl(shellWord(shown), one.sha256, one.withheld)} : {}
    return {kind: 'file', against: 'pulled', root, files, problems, ...resume, notes: [note], ...fix}
  }
  const recorded = new Set(records.map((r) => r.path))
  const others = filesUnder(real).filter((p) => !recorded.has(p) && !/\.(part|journal|lock)$/.test(p)).length
  const notes = [
    `${records.length} file${records.length === 1 ? '' : 's'} checked against the sha256 mtune pull found when it pulled ${records.length === 1 ? 'it' : 'them'} into ${shown}`,
    ...(others ? [`${others} file${others === 1 ? '' : 's'} in it with no record, not checked`] : []),
  ]
  return {kind: 'file', against: 'pulled', root, files, problems, ...resume, notes}
}

/**
 * Several PATHs, as a shell's glob gives them (`mtune verify /models/*.gguf`): each checked
 * against what it would be checked against alone; one with nothing to check against is counted
 * as such rather than failing the others. A list or FILE.sha256 among them stands for what it
 * names, so `mtune verify /models/*` checks each file once.
 */
export function plainFiles(paths: string[]): Expectations {
  // A glob of a folder's files reads and parses its SHA256SUMS once, not once per file.
  const lists: ListsRead = new Map()
  const parts = paths.map((path): Expectations => {
    try {
      return plainFile(path, undefined, lists)
    } catch (error) {
      if (!(error instanceof MtuneError) || error.code !== 'no-digest') throw error
      return {kind: 'file', against: 'sha256', root: dirname(resolve(path)), files: [{name: basename(path), path: resolve(path)}], problems: [], notes: []}
    }
  })
  const files = new Map<string, Expected>()
  // A file named twice (by its own path and by a list) is checked against the digest it was given.
  for (const e of parts.flatMap((p) => p.files)) if (!files.has(e.path) || !algorithmOf(files.get(e.path)!)) files.set(e.path, e)
  // Named as they were typed (relative to here), since two folders may hold the same name.
  const named = [...files.values()].map((e) => ({...e, name: shownPath(e.path)}))
  // A size from a weights file's header is something to check against too (by-header.ts).
  const checkable = (e: Expected) => algorithmOf(e) || e.size !== undefined
  const digested = parts.filter((p) => p.files.some(checkable) || p.problems.length)
  const unchecked = named.filter((e) => !checkable(e)).map((e) => e.name)
  const shown = fewNames(unchecked)
  if (!digested.length) throw usageError('no-digest', `nothing to check ${shown} against: put FILE.sha256 beside each (sha256sum FILE > FILE.sha256), or the publisher's SHA256SUMS that lists them`)
  // One kind of digest for all (one list, or given beside each) is named; a mix is "each its own".
  const kinds = new Set(digested.map((p) => `${p.against} ${p.checksumList ?? ''}`))
  const one = kinds.size === 1 ? digested[0] : undefined
  const fixes = new Set(parts.flatMap((p) => (p.fix ? [p.fix] : [])))
  // One line for the files checked by size alone, one for those not checked at all.
  const sized = named.filter((e) => !algorithmOf(e) && e.size !== undefined).map((e) => e.name)
  const headerNotes = new Set(parts.filter((p) => p.against === 'header').flatMap((p) => p.notes))
  // Many files from mtune pull's record: one line, not one each.
  const pulled = parts.filter((p) => p.against === 'pulled')
  if (pulled.length > 1) for (const p of pulled) p.notes = [`${pulled.length} files checked against the sha256 mtune pull found when it pulled them`]
  const notes = [
    ...new Set(parts.flatMap((p) => p.notes).filter((n) => !headerNotes.has(n))),
    ...(sized.length ? [noDigest(fewNames(sized))] : []),
    ...(unchecked.length ? [`no digest for ${shown}: not checked (put FILE.sha256 beside it, or a SHA256SUMS that lists it)`] : []),
  ]
  return {
    kind: 'file',
    against: one?.against ?? 'each',
    checksumList: one?.checksumList,
    root: process.cwd(),
    files: named,
    problems: parts.flatMap((p) => p.problems.map((q) => ({...q, name: shownPath(q.path)}))),
    ...(parts.some((p) => p.resume?.length) ? {resume: parts.flatMap((p) => p.resume ?? [])} : {}),
    notes,
    fix: fixes.size === 1 ? [...fixes][0] : undefined,
  }
}

const algorithmOf = (e: Expected) => Boolean(e.sha256 ?? e.gitSha1)
const shownPath = (path: string) => {
  const rel = relative(process.cwd(), path)
  return rel && !rel.startsWith('..') ? rel : path
}

/** Every file a checksum list names, in its directory: one missing is missing, as with sha256sum -c. */
function listedFiles(dir: string, list: {path: string; entries: ListedDigest[]}): Expectations {
  if (list.entries.length === 0) throw usageError('bad-digest', `${list.path} lists no sha256 (sha256sum's format: HEX  NAME): fix it, or verify each file with --sha256 HEX`)
  const files: Expected[] = []
  const notes: string[] = []
  for (const e of list.entries) {
    if (files.some((f) => f.name === e.name)) continue
    try {
      files.push({name: e.name, path: safeJoin(dir, e.name), sha256: e.sha256})
    } catch {
      notes.push(`${basename(list.path)} names ${JSON.stringify(e.name)}, which is no path inside ${dir}: not checked`)
    }
  }
  return {kind: 'file', against: 'list', checksumList: list.path, root: dir, files, problems: [], notes}
}
