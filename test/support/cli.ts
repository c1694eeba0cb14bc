import {spawn, type ChildProcess} from 'node:child_process'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {tempDir} from './temp.js'

/** The built CLI, run the way a user runs it. */
export const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'run.js')

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/**
 * The CLI's ~/.cache (XDG_CACHE_HOME) for this test file, unless a test gives its own: what the
 * tests' pulls record for mtune verify (pulled.jsonl) and bench's results stay out of the
 * user's home, and one test file's CLI runs see each other's.
 */
let cacheHome: string | undefined
export const cliCacheHome = (): string => (cacheHome ??= tempDir('xdg-cache'))

export function startCli(args: string[], env: Record<string, string> = {}, options: {cwd?: string} = {}): {child: ChildProcess; done: Promise<CliResult>} {
  // The executable itself, so that its first line (sh handing Node its flags) is tested too.
  const child = spawn(BIN, args, {
    cwd: options.cwd,
    env: {...process.env, XDG_CACHE_HOME: cliCacheHome(), NO_COLOR: '1', MTUNE_PROGRESS_INTERVAL_MS: '200', ...env},
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d) => (stdout += d))
  child.stderr!.on('data', (d) => (stderr += d))
  const done = new Promise<CliResult>((resolve) => child.on('close', (code, signal) => resolve({code, signal, stdout, stderr})))
  return {child, done}
}

export const runCli = (args: string[], env?: Record<string, string>, options?: {cwd?: string}) => startCli(args, env, options).done

/** No stack trace: no "    at fn (file.js:1:2)" lines. */
export const hasStack = (text: string) => /^\s+at .+:\d+:\d+\)?$/m.test(text)
