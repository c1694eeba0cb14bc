import {ExitCode, MtuneError, errorMessage} from '../errors.js'
import {redact} from '../net/request.js'
import type {TransferError} from '../net/retry-policy.js'
import {formatBytes} from '../units.js'
import {signedByUser, type Source} from './source-pool.js'

/** The whole file must be fetched again: it changed on the server, or a stream without ranges broke. */
export class StartOver extends Error {
  constructor(
    message: string,
    readonly changed: boolean,
    /** The validators of the answer that said so, where one did (backend-copies.ts). */
    readonly now?: {etag?: string; lastModified?: string},
  ) {
    super(message)
  }
}

export class FileChanged extends StartOver {
  constructor(message: string, now?: {etag?: string; lastModified?: string}) {
    super(message, true, now)
  }
}

/**
 * The bytes on disk are not the server's (resume-check.ts): the file changed on the server without
 * its ETag or Last-Modified showing it, or, for bytes taken over from another client (adopt.ts),
 * that client left bad ones (a crash mid-write).
 */
export function keptBytesBad(at: number, adoptedFrom: string | undefined): StartOver {
  return adoptedFrom
    ? new StartOver(`the bytes taken over from ${adoptedFrom} are not the server's (at ${at})`, false)
    : new FileChanged(`the bytes kept from the last run (at ${at}) are not the server's now, though its ETag/Last-Modified did not show the change`)
}

/**
 * What the user does after a pull stopped. `resumes` false: the server sends no ranges (or no
 * size), so the next run cannot continue what this one wrote, and the part file is removed.
 */
export const runAgain = (resumes = true) =>
  resumes ? 'run the same command again to resume' : 'run the same command again (the server gives no size or no ranges, so the download starts over)'

export const interrupted = (resumes = true) => new MtuneError('interrupted', `interrupted: ${runAgain(resumes)}`, ExitCode.interrupted)

/**
 * The local disk failed: full (free space, resume) or broken. What is on disk is kept where the
 * next run can continue it; otherwise it is removed (Transfer), which a full disk needs most.
 */
export function diskError(error: unknown, partPath: string, onDisk: number, size: number | undefined, resumes: boolean): MtuneError {
  const code = (error as {code?: string}).code
  const kept = resumes && size ? ` (${formatBytes(onDisk)} of ${formatBytes(size)} are kept)` : resumes ? '' : ' (removed: it could not be continued)'
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    const room = resumes || size === undefined ? 'free some space' : `free ${formatBytes(size)}`
    return new MtuneError('disk-full', `disk full while writing ${partPath}${kept}: ${room} and ${runAgain(resumes)}`, ExitCode.localDisk, {cause: error})
  }
  return new MtuneError('disk-error', `cannot write ${partPath}: ${errorMessage(error)}${kept}`, ExitCode.localDisk, {cause: error})
}

/**
 * A source that refused the pull for good. A link given with a query (a presigned S3 or CDN URL)
 * answered the probe, or the pull would not have started; refused now, its signature has expired.
 * No one but the user can sign a new one, and the bytes on disk take a fresh link as they are (the
 * journal knows a file by its size and validators, not its URL).
 */
export function refusedError(source: Source, e: TransferError): MtuneError {
  if (source.primary && signedByUser(source) && e.status !== undefined && [401, 403, 410].includes(e.status)) {
    return new MtuneError(
      'link-expired',
      `${redact(source.url)} was accepted when the pull started and is refused now (${e.status}): a signed link that expired during the pull; get a fresh link and pull it to the same place, which resumes what is on disk`,
      ExitCode.remote,
      {cause: e},
    )
  }
  return new MtuneError('remote', `cannot download ${redact(source.url)}: ${e.message}`, ExitCode.remote, {cause: e})
}
