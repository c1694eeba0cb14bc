import {accessSync, constants, readFileSync, readdirSync, readlinkSync, realpathSync, statSync, statfsSync, existsSync} from 'node:fs'
import {join} from 'node:path'
import {execa} from 'execa'
import {systeminformation, type SiFacts} from './si.js'

export interface CommandResult {
  stdout: string
  stderr?: string
  exitCode: number
}

/**
 * Every fact doctor and tune use comes through here: files under /proc and /sys (below a root
 * that tests replace with a fixture tree), commands (with a timeout; a runner tests replace),
 * and statfs. Anything unreadable is `undefined`, never an exception.
 */
export interface SystemReader {
  root: string
  read(path: string): string | undefined
  /** The bytes of a file (a gzipped /proc/config.gz, say). */
  readBytes(path: string): Buffer | undefined
  list(path: string): string[] | undefined
  exists(path: string): boolean
  /** The path a sysfs link resolves to, relative to the root. */
  resolve(path: string): string | undefined
  readLink(path: string): string | undefined
  run(command: string, args: string[], timeoutMs?: number): Promise<CommandResult | undefined>
  /** statfs of a real path (not under the root: the filesystem mtune will write to). */
  statfs(path: string): {bavail: number; bsize: number; blocks: number; files: number; ffree: number} | undefined
  writable(path: string): boolean
  env: NodeJS.ProcessEnv
  /** The OS: Linux has /proc and /sys; elsewhere (macOS) systeminformation answers what it can. */
  platform: NodeJS.Platform
  si: SiFacts
}

export function systemReader(
  options: {root?: string; env?: NodeJS.ProcessEnv; run?: SystemReader['run']; statfs?: SystemReader['statfs']; platform?: NodeJS.Platform; si?: SiFacts} = {},
): SystemReader {
  const root = options.root ?? '/'
  const at = (path: string) => join(root, path)
  const quiet = <T>(fn: () => T): T | undefined => {
    try {
      return fn()
    } catch {
      return undefined
    }
  }
  return {
    root,
    env: options.env ?? process.env,
    platform: options.platform ?? process.platform,
    si: options.si ?? systeminformation,
    read: (path) => quiet(() => readFileSync(at(path), 'utf8')),
    readBytes: (path) => quiet(() => readFileSync(at(path))),
    list: (path) => quiet(() => readdirSync(at(path))),
    exists: (path) => existsSync(at(path)),
    readLink: (path) => quiet(() => readlinkSync(at(path))),
    resolve: (path) =>
      quiet(() => {
        const real = realpathSync(at(path))
        const base = realpathSync(root)
        return base === '/' ? real : real.startsWith(base) ? real.slice(base.length) || '/' : undefined
      }),
    run:
      options.run ??
      (async (command, args, timeoutMs = 2_000) => {
        try {
          const r = await execa(command, args, {timeout: timeoutMs, reject: false, stdin: 'ignore', env: options.env})
          if (r.failed && r.exitCode === undefined) return undefined
          return {stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), exitCode: r.exitCode ?? 1}
        } catch {
          return undefined
        }
      }),
    statfs:
      options.statfs ??
      ((path) =>
        quiet(() => {
          const s = statfsSync(path)
          return {bavail: Number(s.bavail), bsize: Number(s.bsize), blocks: Number(s.blocks), files: Number(s.files), ffree: Number(s.ffree)}
        })),
    writable: (path) => Boolean(quiet(() => (accessSync(path, constants.W_OK), statSync(path).isDirectory()))),
  }
}
