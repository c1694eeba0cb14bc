/**
 * Every failure a user can hit is an MtuneError: one line that names the problem and the
 * fix, and an exit code from the documented table below (README.md, "Exit codes").
 */
export const ExitCode = {
  ok: 0,
  failure: 1, // unexpected; a bug or an unclassified error
  usage: 2, // bad input: malformed URL, bad size, existing destination without --force
  remote: 3, // the server said no: 404/410/auth, retries exhausted without progress
  integrity: 4, // digest mismatch, or the file kept changing on the server
  localDisk: 5, // not enough space, disk full, destination not writable
  permission: 6, // needs root (tune --apply, --persist, --rollback)
  service: 7, // mtune cache: nginx is not installed, or would not start (port in use, configuration refused)
  interrupted: 130, // Ctrl-C (SIGINT); SIGTERM exits 143
} as const

export class MtuneError extends Error {
  readonly exitCode: number
  readonly code: string
  /** With --json, beside the error: what was done before it (a list's files that were pulled). */
  readonly details?: Record<string, unknown>

  constructor(code: string, message: string, exitCode: number, options?: {cause?: unknown; details?: Record<string, unknown>}) {
    super(message, options)
    this.name = 'MtuneError'
    this.code = code
    this.exitCode = exitCode
    if (options?.details) this.details = options.details
  }
}

export const usageError = (code: string, message: string) => new MtuneError(code, message, ExitCode.usage)

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message
  return String(error)
}
