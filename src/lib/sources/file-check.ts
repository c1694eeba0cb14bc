import {createHash} from 'node:crypto'
import {stat} from 'node:fs/promises'
import {ExitCode, MtuneError} from '../errors.js'
import {aria2Beside} from '../transfer/adopt.js'
import {digestFile, sha256File} from '../transfer/destination.js'
import type {PlannedFile} from './plan.js'

/** The git blob id of a file: sha1("blob <size>\0" + content). */
export async function gitBlobSha1(path: string): Promise<string> {
  const {size} = await stat(path)
  return digestFile(path, createHash('sha1').update(`blob ${size}\0`))
}

/**
 * Whether a planned file is already in place. Content-addressed stores (blob named by its
 * digest, renamed into place only once verified) need only the size checked; a plain directory
 * needs the content hashed.
 */
export async function fileMatches(file: PlannedFile, hashContent: boolean): Promise<boolean> {
  const info = await stat(file.dest).catch(() => undefined)
  if (!info?.isFile() || (file.size !== undefined && info.size !== file.size)) return false
  // aria2c's partial download (hfd.sh's, in a plain tree) has the full size from the start.
  if (aria2Beside(file.dest)) return false
  if (!hashContent) return true
  if (file.sha256) return (await sha256File(file.dest)) === file.sha256
  if (file.gitSha1) return (await gitBlobSha1(file.dest)) === file.gitSha1
  // Nothing to check it against: the size has to do.
  return true
}

/** The check of a complete part file that sha256 alone cannot do: the git blob id. */
export function verifierFor(file: PlannedFile): ((partPath: string) => Promise<void>) | undefined {
  if (!file.gitSha1) return undefined
  const expected = file.gitSha1
  return async (partPath) => {
    const got = await gitBlobSha1(partPath)
    if (got !== expected) {
      throw new MtuneError('digest-mismatch', `${file.name}: git blob sha1 mismatch: expected ${expected}, got ${got}; the file was removed`, ExitCode.integrity)
    }
  }
}
