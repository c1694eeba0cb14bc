import type {Expected, Problem} from './expect.js'
import type {HashResult} from './hash-pool.js'

export type FileStatus = 'ok' | 'corrupt' | 'truncated' | 'missing' | 'dangling' | 'unreadable' | 'unchecked'

export interface FileVerdict {
  name: string
  path: string
  status: FileStatus
  size?: number
  expected?: string
  actual?: string
  detail?: string
  /** The file is good; only the link that names it is missing or wrong. */
  linkOnly?: boolean
}

/** A file found bad: corrupt, cut short, missing, a dangling link or unreadable (what a repair fetches again). */
export const isBad = (v: FileVerdict): boolean => v.status !== 'ok' && v.status !== 'unchecked'

/** What hashing needs to be done for a file: sha256, git blob sha1, or nothing (size only). */
export const algorithmFor = (e: Expected): 'sha256' | 'git-sha1' | undefined => (e.sha256 ? 'sha256' : e.gitSha1 ? 'git-sha1' : undefined)

/**
 * Pure: one file's verdict from what was expected, what is on disk (size, link target) and its
 * digest. Shorter than expected is truncated; any other difference is corrupt.
 */
export function judge(e: Expected, disk: {size?: number; linkTarget?: string | null}, hashed?: HashResult): FileVerdict {
  const base = {name: e.name, path: e.path, size: disk.size}
  if (disk.size === undefined) return {...base, status: 'missing', detail: 'not on disk'}
  if (e.size !== undefined && disk.size < e.size) return {...base, status: 'truncated', detail: `${disk.size} of ${e.size} bytes`}
  if (e.size !== undefined && disk.size !== e.size) return {...base, status: 'corrupt', detail: `${disk.size} bytes, ${e.size} expected`}
  const want = e.sha256 ?? e.gitSha1
  if (want && (!hashed || hashed.error)) return {...base, status: 'unreadable', detail: hashed?.error ?? 'not hashed'}
  if (want && hashed!.digest !== want) return {...base, status: 'corrupt', expected: want, actual: hashed!.digest, detail: `${e.sha256 ? 'sha256' : 'git blob sha1'} ${hashed!.digest} instead of ${want}`}
  const digests = want ? {expected: want, actual: hashed!.digest} : {}
  // The blob is good: only its snapshot link is wrong (a repair writes the link, fetches nothing).
  if (e.link && disk.linkTarget === null) return {...base, ...digests, status: 'missing', linkOnly: true, detail: `the snapshot link ${e.name} is missing`}
  if (e.link && disk.linkTarget !== undefined && disk.linkTarget !== e.path) return {...base, ...digests, status: 'corrupt', linkOnly: true, detail: `the snapshot link points to ${disk.linkTarget}, not to its blob`}
  if (!want) return {...base, status: e.size === undefined ? 'unchecked' : 'ok', detail: e.size === undefined ? 'nothing to check it against' : 'size only: no digest to check'}
  return {...base, ...digests, status: 'ok'}
}

export interface Summary {
  files: number
  ok: number
  corrupt: number
  truncated: number
  missing: number
  dangling: number
  incomplete: number
  interrupted: number
  unreadable: number
  unchecked: number
  bytesHashed: number
  seconds: number
}

/** Counts over verdicts and the problems found without hashing. */
export function summarize(verdicts: FileVerdict[], problems: Problem[], bytesHashed: number, seconds: number): Summary {
  const s: Summary = {files: verdicts.length, ok: 0, corrupt: 0, truncated: 0, missing: 0, dangling: 0, incomplete: 0, interrupted: 0, unreadable: 0, unchecked: 0, bytesHashed, seconds}
  for (const v of verdicts) s[v.status]++
  for (const p of problems) s[p.kind]++
  return s
}

/** Intact: nothing corrupt, truncated, missing, dangling, left half-done, interrupted or unreadable. */
export const intact = (s: Summary) => s.corrupt + s.truncated + s.missing + s.dangling + s.incomplete + s.interrupted + s.unreadable === 0
