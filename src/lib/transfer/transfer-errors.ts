import {ExitCode, MtuneError, errorMessage} from '../errors.js'
import {formatBytes} from '../units.js'

/** The whole file must be fetched again: it changed on the server, or a stream without ranges broke. */
export class StartOver extends Error {
  constructor(
    message: string,
    readonly changed: boolean,
  ) {
    super(message)
  }
}

export class FileChanged extends StartOver {
  constructor(message: string) {
    super(message, true)
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

export const interrupted = () => new MtuneError('interrupted', 'interrupted: run the same command again to resume', ExitCode.interrupted)

/** The local disk failed: full (free space, resume) or broken; what is on disk is kept either way. */
export function diskError(error: unknown, partPath: string, onDisk: number, size?: number): MtuneError {
  const code = (error as {code?: string}).code
  const kept = size ? ` (${formatBytes(onDisk)} of ${formatBytes(size)} are kept)` : ''
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new MtuneError('disk-full', `disk full while writing ${partPath}${kept}: free some space and run the same command again to resume`, ExitCode.localDisk, {cause: error})
  }
  return new MtuneError('disk-error', `cannot write ${partPath}: ${errorMessage(error)}${kept}`, ExitCode.localDisk, {cause: error})
}
