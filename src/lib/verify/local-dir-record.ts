import {readFileSync} from 'node:fs'
import {join, relative} from 'node:path'
import {filesUnder} from '../fs-dirs.js'
import {safeJoin} from '../sources/safe-names.js'
import {HEX40, HEX64, walk, type Expected, type Expectations} from './expect.js'

/**
 * A tree written by `hf download --local-dir` (or mtune pull --local-dir) keeps a record of each
 * file it fetched: DIR/.cache/huggingface/download/PATH.metadata, whose second line is the
 * file's etag, its sha256 for LFS files and its git blob sha1 for others. So the tree can be
 * checked offline, without knowing which repo it came from.
 */
export function localDirRecord(dir: string, shown = dir): Expectations | undefined {
  const downloads = join(dir, '.cache', 'huggingface', 'download')
  const files: Expected[] = []
  const commits = new Set<string>()
  for (const path of walk(downloads)) {
    if (!path.endsWith('.metadata')) continue
    const name = relative(downloads, path).slice(0, -'.metadata'.length)
    let lines: string[]
    try {
      lines = readFileSync(path, 'utf8').split('\n')
    } catch {
      continue
    }
    const etag = (lines[1] ?? '').trim().replace(/^W\//, '').replace(/"/g, '').toLowerCase()
    const digest = HEX64.test(etag) ? {sha256: etag} : HEX40.test(etag) ? {gitSha1: etag} : undefined
    let target: string
    try {
      target = safeJoin(dir, name)
    } catch {
      continue
    }
    if (!digest) continue
    if (lines[0]?.trim()) commits.add(lines[0].trim())
    files.push({name, path: target, ...digest})
  }
  if (!files.length) return undefined
  const recorded = new Set(files.map((f) => f.path))
  // Counted as the weights check counts a folder's files: its hidden bookkeeping left out.
  const others = filesUnder(dir).filter((p) => !recorded.has(p)).length
  const commit = commits.size === 1 ? ` (commit ${[...commits][0]!.slice(0, 12)})` : commits.size > 1 ? ` (${commits.size} commits)` : ''
  const notes = [
    `checked offline against huggingface_hub's record of what it fetched into ${shown}${commit}; mtune verify hf://ORG/NAME --local-dir ${shown} checks it against the hub, files it lacks too`,
    ...(others ? [`${others} file${others === 1 ? '' : 's'} in the tree with no record, not checked`] : []),
  ]
  return {kind: 'file', against: 'record', root: dir, files, problems: [], notes}
}
