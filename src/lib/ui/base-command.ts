import {Command, Errors, Flags} from '@oclif/core'
import {ExitCode, MtuneError, usageError} from '../errors.js'
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
    // The parser's errors (unknown flag, missing argument) come with a usage screen and notes;
    // like ours, they get one line, with the way to the help.
    if (err instanceof Errors.ExitError) return super.catch(err)
    if (isParseError(err)) return this.catch(usageError('usage', parseErrorLine(err, this.id)))
    if (err.oclif?.exit !== undefined) return super.catch(err)
    const hint = this.debugEnabled ? '' : ' (run again with --debug for details)'
    process.stderr.write(`${chalk.red('Error:')} unexpected error: ${mask(err.message)}${hint}\n`)
    this.exit(ExitCode.failure)
  }
}

type ParseError = Error & {args?: {name: string; description?: string}[]}

/**
 * oclif's errors other than exits all come from parsing the command line (mtune raises its
 * own); a flag's own parse failure ("Parsing --x") is a plain Error with an exit code.
 */
function isParseError(err: Error & {oclif?: {exit?: number}}): boolean {
  return err instanceof Errors.CLIError || (err.oclif?.exit !== undefined && err.message.startsWith('Parsing --'))
}

/** One line from the parser's error: what it says, without its headings, notes and pointers to help. */
function parseErrorLine(err: ParseError, id: string | undefined): string {
  const help = `see mtune${id ? ` ${id.replace(/:/g, ' ')}` : ''} --help`
  const missing = err.args?.filter((a) => a.name)
  if (err.constructor.name === 'RequiredArgsError' && missing?.length) {
    const names = missing.map((a) => `${a.name.toUpperCase()}${a.description ? ` (${a.description})` : ''}`).join(', ')
    return `missing ${names}; ${help}`
  }
  const lines: string[] = []
  for (const raw of err.message.split('\n')) {
    const line = raw.trim()
    if (line.startsWith('Note:') || line.startsWith('See more help')) break
    if (line !== '' && !/^The following errors? occurred:?$/.test(line)) lines.push(line)
  }
  const text = lines[0]?.startsWith('Parsing --') ? lines.join(': ') : lines.join('; ')
  return `${text || 'invalid arguments'}; ${help}`
}
