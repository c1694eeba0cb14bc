import {writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {makeDirs} from '../fs-dirs.js'
import type {PlannedFile} from './plan.js'
import {safeJoin} from './safe-names.js'

/**
 * huggingface_hub's bookkeeping in a --local-dir tree (_local_folder.py): for each file,
 * DIR/.cache/huggingface/download/PATH.metadata holds the commit, the etag (sha256 for LFS
 * files, the git blob sha1 for others) and when it was written, in seconds, one per line.
 * With it, `hf download --local-dir DIR` later finds each file current at once; without it,
 * it re-hashes every large file (minutes for a 100 GB model) and fetches the small ones again.
 * Written only for files this pull fetched and verified: a file found present by its size alone
 * is not vouched for. The metadata counts only while the file's mtime is no later than it.
 */
/** Where huggingface_hub records a file of a --local-dir tree. */
/** Where huggingface_hub keeps its record of a file of a --local-dir tree, and its partial download of it (PATH.ETAG.incomplete). */
const downloadRecord = (localDir: string, name: string): string => safeJoin(join(localDir, '.cache', 'huggingface', 'download'), name)
export const downloadMetadataPath = (localDir: string, name: string): string => `${downloadRecord(localDir, name)}.metadata`
export const downloadIncompletePath = (localDir: string, name: string, etag: string): string => `${downloadRecord(localDir, name)}.${etag}.incomplete`

export async function writeDownloadMetadata(localDir: string, commit: string, files: PlannedFile[]): Promise<void> {
  const fetched = files.filter((f) => !f.present && (f.sha256 ?? f.gitSha1))
  if (fetched.length === 0) return
  const hfDir = join(localDir, '.cache', 'huggingface')
  await makeDirs(hfDir)
  // As huggingface_hub does: the folder stays out of a git repo the tree may live in.
  await writeFile(join(hfDir, '.gitignore'), '*', {flag: 'wx'}).catch(() => {})
  const now = Date.now() / 1000
  for (const f of fetched) {
    const path = downloadMetadataPath(localDir, f.name)
    await makeDirs(dirname(path))
    await writeFile(path, `${commit}\n${f.sha256 ?? f.gitSha1}\n${now}\n`)
  }
}
