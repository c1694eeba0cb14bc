import {habitFor, shortHabitFor} from './flag-habits.js'
import {closeEnough, editDistance} from '../near-names.js'
import {Command, Errors, Flags, type Interfaces} from '@oclif/core'
import {ExitCode, MtuneError, usageError} from '../errors.js'
import {fsFailure} from '../fs-dirs.js'
import {chalk} from './colors.js'
import {mask} from './secrets.js'

/**
 * How long a command may take to wind down after Ctrl-C before it exits regardless. A pull's
 * stop (its last writes and the journal's checkpoint) takes well under a second; on a disk slow
 * to flush, exiting first costs only the re-fetch of what the last checkpoint did not record.
 */
export const INTERRUPT_GRACE_MS = 2_000

/**
 * Every mtune command fails the same way: one line naming the problem and the fix, the
 * documented exit code, and a stack trace only with --debug.
 */
export abstract class MtuneCommand extends Command {
  static override baseFlags = {
    debug: Flags.boolean({description: 'Print stack traces and request details when something fails.', helpGroup: 'GLOBAL'}),
  }

  /**
   * oclif's parse, then one check every command shares: a flag given empty (`--local-dir "$DIR"`
   * with DIR unset in a script) meant the flag left out, in silence (refuseEmptyFlags).
   */
  // The constraints are oclif's FlagOutput and ArgOutput, which it does not export.
  protected override async parse<F extends {[name: string]: any}, B extends {[name: string]: any}, A extends {[name: string]: any}>(
    options?: Interfaces.Input<F, B, A>,
    argv?: string[],
  ): Promise<Interfaces.ParserOutput<F, B, A>> {
    const parsed = await super.parse(options, argv)
    refuseEmptyFlags(parsed.flags as Record<string, unknown>)
    return parsed
  }

  protected get debugEnabled(): boolean {
    return this.argv.includes('--debug')
  }

  /**
   * Ctrl-C (and the other `signals`) abort `abort`, and the command winds down through it: a pull
   * flushes its journal, so the same command resumes. Should it not end within
   * INTERRUPT_GRACE_MS, or at a second signal, it exits at once with the error `interrupted`
   * makes: some waits take no signal (undici's proxy agent passes none to a CONNECT that the
   * proxy never answers), and what a pull keeps on disk survives an exit as it survives a kill.
   * Returns which signal came first, if any, and the function that removes the handlers.
   */
  protected onInterrupt(
    abort: AbortController,
    interrupted: (signal: NodeJS.Signals) => MtuneError,
    signals: NodeJS.Signals[] = ['SIGINT'],
  ): {signal(): NodeJS.Signals | undefined; dispose(): void} {
    let first: NodeJS.Signals | undefined
    let timer: NodeJS.Timeout | undefined
    const force = () => {
      const err = interrupted(first!)
      this.report(err)
      process.exit(err.exitCode)
    }
    const handler = (signal: NodeJS.Signals) => {
      if (first) return force()
      first = signal
      abort.abort()
      timer = setTimeout(force, INTERRUPT_GRACE_MS).unref()
    }
    for (const signal of signals) process.on(signal, handler)
    return {
      signal: () => first,
      dispose: () => {
        clearTimeout(timer)
        for (const signal of signals) process.off(signal, handler)
      },
    }
  }

  /** An MtuneError as its one line on stderr, or as the error document with --json. */
  private report(err: MtuneError): void {
    // Details go through the same mask as the line: they can hold URLs with their tokens.
    const details = err.details ? (JSON.parse(mask(JSON.stringify(err.details))) as Record<string, unknown>) : {}
    if (this.jsonEnabled()) this.logJson({error: {code: err.code, message: mask(err.message), exitCode: err.exitCode}, ...details})
    // Our own line, not oclif's: its pretty-printer wraps at 80 columns.
    else process.stderr.write(`${chalk.red('Error:')} ${mask(err.message)}\n`)
  }

  protected override async catch(err: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    if (this.debugEnabled && err.stack) this.logToStderr(mask(err.stack))
    if (err instanceof MtuneError) {
      this.report(err)
      if (this.jsonEnabled()) {
        process.exitCode = err.exitCode
        return
      }
      this.exit(err.exitCode)
    }
    // The parser's errors (unknown flag, missing argument) come with a usage screen and notes;
    // like ours, they get one line, with the way to the help.
    if (err instanceof Errors.ExitError) return super.catch(err)
    if (isParseError(err)) {
      const ctor = this.constructor as typeof Command
      const flags = [...Object.keys({...ctor.baseFlags, ...ctor.flags}), ...(ctor.enableJsonFlag ? ['json'] : [])]
      return this.catch(usageError('usage', parseErrorLine(err, this.id, this.argv, flags)))
    }
    if (err.oclif?.exit !== undefined) return super.catch(err)
    const disk = fsFailure(err)
    if (disk) return this.catch(disk)
    const hint = this.debugEnabled ? '' : ' (run again with --debug for details)'
    process.stderr.write(`${chalk.red('Error:')} unexpected error: ${mask(err.message)}${hint}\n`)
    this.exit(ExitCode.failure)
  }
}

type ParseError = Error & {args?: {name: string; description?: string}[]; flags?: string[]}

/**
 * oclif's errors other than exits all come from parsing the command line (mtune raises its
 * own); a flag's own parse failure ("Parsing --x") is a plain Error with an exit code.
 */
function isParseError(err: Error & {oclif?: {exit?: number}}): boolean {
  return err instanceof Errors.CLIError || (err.oclif?.exit !== undefined && err.message.startsWith('Parsing --'))
}

/** One line from the parser's error: what it says, without its headings, notes and pointers to help. */
function parseErrorLine(err: ParseError, id: string | undefined, argv: string[], flags: string[] = []): string {
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
  // oclif words an exclusive pair as "--force=true cannot also be provided when using --continue".
  const together = (line: string) => line.replace(/^(--[\w-]+)=.* cannot also be provided when using (--[\w-]+)$/, '$1 and $2 cannot be used together')
  const text = lines[0]?.startsWith('Parsing --') ? lines.join(': ') : lines.map(together).join('; ')
  // Another tool's flag, typed from habit: what mtune takes for it.
  // Or one of mtune's short flags, typed as another tool's: its value then does not parse.
  const valueOf = /^(?:Parsing (--[\w-]+): Expected an? \w+ but received|Flag (--[\w-]+) expects a value)/.exec(text)
  const habit =
    err.constructor.name === 'NonExistentFlagsError'
      ? (err.flags?.map((f) => habitFor(id, f)).find(Boolean) ?? err.flags?.map((f) => nearestFlag(f, flags)).find(Boolean))
      : valueOf
        ? shortHabitFor(id, valueOf[1] ?? valueOf[2], argv)
        : undefined
  return `${text || 'invalid arguments'}; ${habit ? `${habit}; ` : ''}${help}`
}

/** The flags that name a place on disk, in every command that has them. */
const PATH_FLAGS = new Set(['output', 'local-dir', 'path', 'dir', 'disk', 'input-file'])
/** Where empty says something: no cache (MTUNE_CACHE=, as scripts turn it off), no extra CDN hosts. */
const EMPTY_MEANS_NONE = new Set(['cache', 'cdn-host'])

/**
 * A flag given empty, refused with its name: one line, exit 2. `--limit-rate "$RATE"` with RATE
 * unset pulled uncapped, `--local-dir ""` into the cache, `doctor --model ""` without the model.
 */
export function refuseEmptyFlags(flags: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(flags)) {
    if (EMPTY_MEANS_NONE.has(name)) continue
    if (value !== '' && !(Array.isArray(value) && value.includes(''))) continue
    throw usageError('empty-flag', `--${name} is empty (a variable not set?): give ${PATH_FLAGS.has(name) ? 'a path' : 'a value'}, or leave the flag out`)
  }
}

/** A typo of one of the command's own flags (`--sizee`, `--inclde`): "did you mean --size?". */
export function nearestFlag(typed: string, flags: string[]): string | undefined {
  const name = typed.replace(/=.*$/, '').replace(/^-+/, '')
  if (name.length < 3) return undefined
  // The start of one flag (--out, --conn, as GNU getopt would take them): that flag, not a typo's neighbour (--auto).
  const started = flags.filter((f) => f.startsWith(name))
  if (started.length === 1) return `did you mean --${started[0]}?`
  const scored = flags.map((f) => ({f, d: editDistance(name, f)})).filter((s) => closeEnough(name, s.d))
  scored.sort((a, b) => a.d - b.d || a.f.localeCompare(b.f))
  return scored[0] && `did you mean --${scored[0].f}?`
}
