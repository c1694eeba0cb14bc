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
