import {Command, Errors, Flags} from '@oclif/core'
import {ExitCode, MtuneError} from '../errors.js'
import {chalk} from './colors.js'
import {mask} from './secrets.js'

/**
 * Every mtune command fails the same way: one line naming the problem and the fix, the
 * documented exit code, and a stack trace only with --debug.
 */
export abstract class MtuneCommand extends Command {
  static override baseFlags = {
    debug: Flags.boolean({description: 'Print stack traces and request details when something fails.', helpGroup: 'GLOBAL'}),
  }

  protected get debugEnabled(): boolean {
    return this.argv.includes('--debug')
  }

  protected override async catch(err: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    if (this.debugEnabled && err.stack) this.logToStderr(mask(err.stack))
    if (err instanceof MtuneError) {
      if (this.jsonEnabled()) {
        process.exitCode = err.exitCode
        this.logJson({error: {code: err.code, message: mask(err.message), exitCode: err.exitCode}})
        return
      }
      // Our own line, not oclif's: its pretty-printer wraps at 80 columns.
      process.stderr.write(`${chalk.red('Error:')} ${mask(err.message)}\n`)
      this.exit(err.exitCode)
    }
    // oclif's own errors (unknown flag, missing argument) already read well and exit 2.
    if (err instanceof Errors.CLIError || err.oclif?.exit !== undefined) return super.catch(err)
    const hint = this.debugEnabled ? '' : ' (run again with --debug for details)'
    process.stderr.write(`${chalk.red('Error:')} unexpected error: ${mask(err.message)}${hint}\n`)
    this.exit(ExitCode.failure)
  }
}
