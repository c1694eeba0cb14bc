import {existsSync, readFileSync, statSync} from 'node:fs'
import {basename, dirname, resolve} from 'node:path'
import {usageError} from '../errors.js'
import {hfCacheDir} from '../sources/hf.js'
import {safeJoin} from '../sources/safe-names.js'
import {CHECKSUM_LISTS, checksumListIn, parseChecksumList, type ListedDigest} from './checksum-list.js'
import {HEX64, type Expected, type Expectations} from './expect.js'

/**
 * A folder of the Hugging Face cache (`models--ORG--NAME`, or one of its snapshots), which people
 * reach with cd and then ask to verify: the repo it holds, and the command that checks it (with
 * HF_HUB_CACHE when that cache is not the one the environment names). A repo name never holds
 * "--" (huggingface_hub refuses it), so the first one after ORG splits the two.
 */
function hfCacheFolder(dir: string): {repo: string; command: string} | undefined {
  const parts = dir.split('/')
  const at = parts.findIndex((p) => /^(models|datasets)--[^-].*--./.test(p))
  if (at < 0) return undefined
  const [kind, org, ...name] = parts[at]!.split('--')
  const repo = `${kind === 'datasets' ? 'datasets/' : ''}${org}/${name.join('--')}`
  const cache = parts.slice(0, at).join('/') || '/'
  const revision = parts[at + 1] === 'snapshots' && parts[at + 2] ? ` --revision ${parts[at + 2]}` : ''
  const env = resolve(hfCacheDir()) === cache ? '' : `HF_HUB_CACHE=${cache} `
  return {repo, command: `${env}mtune verify hf://${repo}${revision}`}
}

/**
 * A plain file against --sha256, the FILE.sha256 beside it, or its line in a checksum list beside
 * it (SHA256SUMS, as `sha256sum -c` reads it); a directory against the checksum list in it.
 */
export function plainFile(path: string, sha256?: string): Expectations {
  const full = resolve(path)
  // Checked first: what a directory lacks is a source, not a digest.
  if (existsSync(full) && statSync(full).isDirectory()) {
    const cached = hfCacheFolder(full)
    if (cached) throw usageError('is-directory', `${path} is a directory: the Hugging Face cache's copy of ${cached.repo}; check it with: ${cached.command}`)
    if (sha256 !== undefined) throw usageError('bad-flag', `${path} is a directory: --sha256 is for one file; give the file, or put its SHA256SUMS in the directory`)
    const list = checksumListIn(full)
    if (list) return listedFiles(full, list)
    throw usageError(
      'is-directory',
      `${path} is a directory: give a file, or put the publisher's SHA256SUMS in it to check what it lists, or for a model pulled into it with --local-dir, its source: mtune verify hf://ORG/NAME --local-dir ${path} (or modelscope://)`,
    )
  }
  // The list itself, as `sha256sum -c SHA256SUMS` is given it: what it names.
  if (sha256 === undefined && CHECKSUM_LISTS.includes(basename(full)) && existsSync(full)) {
    return listedFiles(dirname(full), {path: full, entries: parseChecksumList(readFileSync(full, 'utf8'))})
  }
  let expected = sha256?.replace(/^sha256:/i, '').toLowerCase()
  let checksumList: string | undefined
  if (expected === undefined) {
    const beside = `${full}.sha256`
    const text = existsSync(beside) ? readFileSync(beside, 'utf8') : undefined
    expected = text ? /^\s*\\?([0-9a-fA-F]{64})\b/.exec(text)?.[1]?.toLowerCase() : undefined
    if (text !== undefined && !expected) throw usageError('bad-digest', `${beside} holds no sha256 (sha256sum's format: HEX  NAME): fix it or give --sha256 HEX`)
  }
  if (expected === undefined) {
    const list = checksumListIn(dirname(full))
    expected = list?.entries.find((e) => e.name === basename(full))?.sha256
    if (expected) checksumList = list!.path
  }
  if (!expected) {
    throw usageError(
      'no-digest',
      `nothing to check ${path} against: give --sha256 HEX, or put ${basename(full)}.sha256 beside it (sha256sum ${basename(full)} > ${basename(full)}.sha256), or the publisher's SHA256SUMS that lists it`,
    )
  }
  if (!HEX64.test(expected)) throw usageError('bad-digest', `invalid --sha256 "${sha256}": 64 hex digits expected`)
  const files = [{name: basename(full), path: full, sha256: expected}]
  return {kind: 'file', against: checksumList ? 'list' : 'sha256', checksumList, root: dirname(full), files, problems: [], notes: []}
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
