import {dirname} from 'node:path'
import type {Plan, PlannedFile} from '../sources/plan.js'
import {hubFileHeaders} from '../sources/hub-files.js'
import {withNetrc} from '../net/netrc.js'
import {runPlan, type RunOptions} from '../sources/run-plan.js'
import type {PullEvents} from '../transfer/pull-types.js'
import type {Expected} from './expect.js'
import {isBad, type FileVerdict} from './judge.js'
import {pullWithWholeUrl} from './plain-file.js'
import {fewNames} from '../units.js'
import {shellWord} from '../ui/shell-words.js'

/**
 * --repair for plain files that mtune pull recorded (pull-record.ts): each bad one fetched again
 * from its URL and checked against the sha256 on record, as `pull -i` pulls a list (one plan per
 * directory, so that a plan's root is the files' own folder), and each `cut` one (its part file
 * there, the file not), which the pull resumes. The bad file stays in place until a good one
 * replaces it. Returns the names of the files fetched: none when no bad file has a
 * URL on record.
 */
export async function pullAgain(files: Expected[], verdicts: FileVerdict[], run: RunOptions, events: PullEvents, cut: string[] = []): Promise<string[]> {
  const bad = badPaths(verdicts, cut)
  const byDir = new Map<string, PlannedFile[]>()
  for (const f of files) {
    if (!f.url || !bad.has(f.path)) continue
    const headers = hubFileHeaders(f.url)
    // Credentials from ~/.netrc, as the pull that recorded it had them.
    const planned: PlannedFile = {name: f.name, url: withNetrc(f.url), dest: f.path, size: f.size, sha256: f.sha256, present: false, ...(headers ? {headers} : {})}
    byDir.set(dirname(f.path), [...(byDir.get(dirname(f.path)) ?? []), planned])
  }
  const names: string[] = []
  for (const [root, planned] of byDir) {
    const plan: Plan = {source: `mtune pull's record (${planned.length} URL${planned.length === 1 ? '' : 's'})`, root, layout: 'directory', files: planned, headers: {}, finish: async () => {}, notes: []}
    await runPlan(plan, run, events)
    names.push(...planned.map((f) => f.name))
  }
  return names
}

/** The files found bad, and those whose pull was cut. */
const badPaths = (verdicts: FileVerdict[], cut: string[]) => new Set([...verdicts.filter(isBad).map((v) => v.path), ...cut])

/** Why the bad files pullAgain cannot fetch are left as they are (no whole URL on record), or undefined. */
export function leftBad(files: Expected[], verdicts: FileVerdict[], cut: string[] = []): string | undefined {
  const bad = badPaths(verdicts, cut)
  const left = files.filter((f) => bad.has(f.path) && !f.url)
  if (!left.length) return undefined
  const one = left.length === 1 ? left[0] : undefined
  return `${fewNames(left.map((f) => f.name))}: ${pullWithWholeUrl(one ? shellWord(one.name) : 'PATH', one?.sha256 ?? 'HEX', one?.withheld ?? [])}`
}
