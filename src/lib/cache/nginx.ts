import {spawn} from 'node:child_process'
import {accessSync, chmodSync, chownSync, constants, readFileSync, readdirSync, readlinkSync, statSync} from 'node:fs'
import {createServer} from 'node:net'
import {join} from 'node:path'
import {ExitCode, MtuneError} from '../errors.js'
import {writeFileAtomic} from '../fs-atomic.js'
import {makeDirsSync} from '../fs-dirs.js'
import {parseListen, type CacheOptions, type CacheSettings} from './options.js'

/** MTUNE_NGINX when set (an nginx elsewhere, or none: a test); else PATH, then where nginx usually is. */
export function findNginx(env = process.env): string | undefined {
  if (env.MTUNE_NGINX !== undefined) {
    try {
      accessSync(env.MTUNE_NGINX, constants.X_OK)
      return env.MTUNE_NGINX
    } catch {
      return undefined
    }
  }
  const dirs = [...(env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/usr/local/sbin', '/sbin']
  for (const dir of dirs) {
    const path = join(dir, 'nginx')
    try {
      accessSync(path, constants.X_OK)
      return path
    } catch {
      // not here
    }
  }
  return undefined
}

export function requireNginx(env = process.env): string {
  const path = findNginx(env)
  if (!path) {
    throw new MtuneError('no-nginx', 'nginx is not installed: install it (Debian/Ubuntu: sudo apt-get install -y nginx, whose build has the slice module), then run this again', ExitCode.service)
  }
  return path
}

export const paths = (dir: string) => ({
  conf: join(dir, 'nginx.conf'),
  pid: join(dir, 'nginx.pid'),
  state: join(dir, 'mtune-cache.json'),
  accessLog: join(dir, 'logs', 'access.log'),
  errorLog: join(dir, 'logs', 'error.log'),
  cache: join(dir, 'cache'),
})

/** The arguments that make nginx use DIR for everything, its startup errors included. */
export const nginxArgs = (dir: string, conf = paths(dir).conf) => ['-p', dir, '-c', conf, '-e', paths(dir).errorLog]

/** DIR and the folders nginx writes to; as root, the workers' user owns what they write. */
export function prepareDir(dir: string, workerUser?: {uid: number; gid: number}): void {
  try {
    makeDirsSync(dir)
    accessSync(dir, constants.W_OK)
    for (const sub of ['logs', 'cache', 'tmp/client', 'tmp/proxy', 'tmp/fastcgi', 'tmp/uwsgi', 'tmp/scgi']) makeDirsSync(join(dir, sub))
  } catch (error) {
    throw new MtuneError('dir-not-writable', `cannot use ${dir} for the cache (${(error as {code?: string}).code ?? (error as Error).message}): choose a --dir you can write to`, ExitCode.localDisk)
  }
  if (workerUser) {
    for (const sub of ['cache', 'tmp', 'tmp/client', 'tmp/proxy', 'tmp/fastcgi', 'tmp/uwsgi', 'tmp/scgi']) chownSync(join(dir, sub), workerUser.uid, workerUser.gid)
    // The workers must reach cache/ and tmp/ through DIR: traverse only, no listing.
    const mode = statSync(dir).mode & 0o777
    if ((mode & 0o001) === 0) chmodSync(dir, mode | 0o001)
  }
}

/** Run as root, nginx's workers drop to an unprivileged user: www-data (Debian's), else nobody. */
export function workerUser(passwd = readPasswd()): {name: string; uid: number; gid: number} | undefined {
  if (process.getuid?.() !== 0) return undefined
  for (const name of ['www-data', 'nginx', 'nobody']) {
    const line = passwd.split('\n').find((l) => l.startsWith(`${name}:`))
    const f = line?.split(':')
    if (f && f.length > 3) return {name, uid: Number(f[2]), gid: Number(f[3])}
  }
  return undefined
}

function readPasswd(): string {
  try {
    return readFileSync('/etc/passwd', 'utf8')
  } catch {
    return ''
  }
}

/** The cache's own record of how it was started: status and a second serve read it. */
export interface CacheState {
  version: 1
  url: string
  dir: string
  listen: string
  endpoints: {hf: string; modelscope: string; ollama: string; origins: Record<string, string>}
  maxSize: number
  /** nginx's min_free (--min-free worked out on this disk); absent when it could not be. */
  minFreeBytes?: number
  startedAt: string
  /** When a serve with other settings last reloaded it. */
  reloadedAt?: string
  /** The settings it runs with (absent in a cache started before they were kept). */
  settings?: CacheSettings
}

export function readState(dir: string): CacheState | undefined {
  try {
    const s = JSON.parse(readFileSync(paths(dir).state, 'utf8')) as CacheState
    return s.version === 1 ? s : undefined
  } catch {
    return undefined
  }
}

export const writeState = (dir: string, state: CacheState) => writeFileAtomic(paths(dir).state, JSON.stringify(state, null, 2) + '\n')

/** The running nginx master of DIR, from its pid file: alive and an nginx. */
export function runningPid(dir: string): number | undefined {
  let pid: number
  try {
    pid = Number(readFileSync(paths(dir).pid, 'utf8').trim())
  } catch {
    return undefined
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined
  try {
    process.kill(pid, 0)
  } catch (error) {
    // EPERM: alive, someone else's (a cache started by root, looked at by a user).
    if ((error as {code?: string}).code !== 'EPERM') return undefined
  }
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    if (!cmdline.includes('nginx')) return undefined
  } catch {
    // No /proc (macOS): the pid file and a live process are all there is to go by.
  }
  return pid
}

/**
 * The mtune caches running on this host, found as nginx masters started with `-p DIR`
 * (nginxArgs) whose DIR holds a cache's state: a serve, status or stop given another --dir (a
 * typo, or root's default) is pointed at the one running. Empty without /proc.
 */
export function runningCaches(): Array<{dir: string; pid: number; listen: string}> {
  const found: Array<{dir: string; pid: number; listen: string}> = []
  for (const pid of procPids()) {
    const title = titleOf(pid)
    // The master rewrites its title into one string: "nginx: master process /usr/sbin/nginx -p DIR ...".
    if (!title.startsWith('nginx: master process')) continue
    const words = title.split(/[\0 ]/)
    const at = words.indexOf('-p')
    const dir = at >= 0 ? words[at + 1] : undefined
    const state = dir ? readState(dir) : undefined
    if (dir && state && runningPid(dir) === Number(pid)) found.push({dir, pid: Number(pid), listen: state.listen})
  }
  return found
}

/** The mtune cache of this host that listens on `port`. */
const cacheOnPort = (port: number) => runningCaches().find((c) => parseListen(c.listen).port === port)

/** Fails with the port's owner in words when HOST:PORT cannot be bound. */
export async function checkPortFree(listen: CacheOptions['listen']): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = createServer()
    server.once('error', (error: NodeJS.ErrnoException) => {
      const where = `${listen.host}:${listen.port}`
      const owner = error.code === 'EADDRINUSE' ? cacheOnPort(listen.port) : undefined
      if (owner) {
        reject(new MtuneError('port-in-use', `cannot listen on ${where}: the mtune cache in ${owner.dir} (nginx pid ${owner.pid}) serves on that port: use it (mtune cache status --dir ${owner.dir}), or choose another port with --listen HOST:PORT`, ExitCode.service))
      } else if (error.code === 'EADDRINUSE') reject(new MtuneError('port-in-use', `cannot listen on ${where}: the port is in use; choose another with --listen HOST:PORT`, ExitCode.service))
      else if (error.code === 'EACCES') reject(new MtuneError('port-denied', `cannot listen on ${where}: ports below 1024 need root; choose a port of 1024 or more with --listen`, ExitCode.service))
      else if (error.code === 'EADDRNOTAVAIL') reject(new MtuneError('bad-listen', `cannot listen on ${where}: this host has no such address; give one of its own with --listen`, ExitCode.usage))
      else reject(new MtuneError('port-error', `cannot listen on ${where}: ${error.message}`, ExitCode.service))
    })
    server.listen(listen.port, listen.host, () => server.close(() => resolve()))
  })
}

/** nginx's [emerg] line, else its last line, else its exit code: what it says went wrong. */
const emerg = (output: string, code: number | null) => /\[emerg\][^\n]*/.exec(output)?.[0] ?? (output.trim().split('\n').pop() || `exit ${code}`)

/**
 * Run nginx with DIR's arguments; resolves with its exit code and what it printed, when the
 * process it started exits. Starting nginx, that is the parent once its master has forked: the
 * daemon may still hold the inherited pipes, so they are let go of then, not waited for.
 */
function runNginx(nginx: string, dir: string, extra: string[] = [], conf?: string): Promise<{code: number | null; output: string}> {
  return new Promise((resolve, reject) => {
    const child = spawn(nginx, [...nginxArgs(dir, conf), ...extra], {stdio: ['ignore', 'pipe', 'pipe']})
    let output = ''
    child.stdout!.on('data', (d) => (output += d))
    child.stderr!.on('data', (d) => (output += d))
    child.on('error', reject)
    child.on('exit', (code) => {
      child.stdout!.destroy()
      child.stderr!.destroy()
      resolve({code, output})
    })
  })
}

/** `nginx -t`: the configuration is refused with nginx's own words (its [emerg] line). */
export async function testConfig(nginx: string, dir: string, conf = paths(dir).conf): Promise<void> {
  const {code, output} = await runNginx(nginx, dir, ['-t', '-q'], conf)
  if (code !== 0) throw new MtuneError('nginx-config', `nginx refused the configuration in ${conf}: ${emerg(output, code)}`, ExitCode.service)
}

/**
 * Have the running master at `pid` read its configuration again (HUP): new workers take the new
 * settings, the old ones finish their requests, the cache stays. nginx keeps the old settings if
 * the new ones fail at run time (a port it cannot bind), so the reload counts only once the
 * cache's own page answers with the new configuration's generation.
 */
export async function reloadNginx(pid: number, dir: string, localUrl: string, generation: string, timeoutMs = 15_000): Promise<void> {
  process.kill(pid, 'SIGHUP')
  const deadline = Date.now() + timeoutMs
  while (!(await mtunePage(localUrl))?.includes(`"config": "${generation}"`)) {
    if (Date.now() > deadline) throw new MtuneError('nginx-reload', `nginx (pid ${pid}) kept its previous settings: the new ones failed as it loaded them (see ${paths(dir).errorLog})`, ExitCode.service)
    await new Promise((r) => setTimeout(r, 50))
  }
}


/** Start nginx as a daemon (its master forks and the command returns) and wait until it answers. */
export async function startNginx(nginx: string, dir: string, localUrl: string, timeoutMs = 15_000): Promise<number> {
  const {code, output} = await runNginx(nginx, dir)
  if (code !== 0) {
    const line = emerg(output, code)
    const inUse = /Address already in use/.test(line)
    throw new MtuneError(inUse ? 'port-in-use' : 'nginx-start', inUse ? `nginx could not listen: the port is in use; choose another with --listen (${line})` : `nginx did not start: ${line} (see ${paths(dir).errorLog})`, ExitCode.service)
  }
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const pid = runningPid(dir)
    if (pid && (await answers(localUrl))) return pid
    if (Date.now() > deadline) throw new MtuneError('nginx-start', `nginx started but does not answer at ${localUrl} (see ${paths(dir).errorLog})`, ExitCode.service)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** The cache's own page answers: it is up. */
export const answers = async (base: string): Promise<boolean> => (await mtunePage(base)) !== undefined

/** The cache's own page (its configuration's generation in it), or undefined when it does not answer 200. */
async function mtunePage(base: string, timeoutMs = 2_000): Promise<string | undefined> {
  try {
    const res = await fetch(`${base}/-/mtune`, {signal: AbortSignal.timeout(timeoutMs)})
    const text = await res.text()
    return res.status === 200 ? text : undefined
  } catch {
    return undefined
  }
}

/** Stop DIR's nginx: gracefully (QUIT: requests in flight finish), then TERM after a while. */
export async function stopNginx(dir: string, graceMs = 10_000): Promise<number | undefined> {
  const pid = runningPid(dir)
  if (!pid) return undefined
  await endProcesses([pid], graceMs)
  return pid
}

/**
 * DIR's nginx workers (and cache manager) still running without their master. A master that
 * dies without its workers (kill -9, the OOM killer) leaves them serving on the cache's port:
 * serve then found the port in use, and status said "not running" while they answered. They
 * are told by their standard error, DIR's error log (nginxArgs), and a parent that is no nginx
 * master. Empty without /proc, and for another user's processes, whose descriptors cannot be read.
 */
export function leftoverWorkers(dir: string): number[] {
  const errorLog = paths(dir).errorLog
  const found: number[] = []
  for (const pid of procPids()) {
    try {
      const title = titleOf(pid)
      if (!title.startsWith('nginx: ') || title.startsWith('nginx: master')) continue
      if (readlinkSync(`/proc/${pid}/fd/2`) !== errorLog) continue
      const ppid = procStat(pid)?.ppid ?? 0
      if (ppid > 1 && titleOf(ppid).startsWith('nginx: master')) continue
      found.push(pid)
    } catch {
      // Gone meanwhile, or another user's.
    }
  }
  return found
}

/** End DIR's leftover workers (leftoverWorkers) as stop ends a master; their pids. */
export async function endLeftoverWorkers(dir: string, graceMs = 10_000): Promise<number[]> {
  const pids = leftoverWorkers(dir)
  if (pids.length > 0) await endProcesses(pids, graceMs)
  return pids
}

/** The process's state letter (R, S, Z...) and parent from /proc; undefined where they cannot be read. */
function procStat(pid: number): {state: string; ppid: number} | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // After the command, which is in parentheses and may hold spaces.
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return {state: state!, ppid: Number(ppid)}
  } catch {
    return undefined
  }
}

function titleOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
  } catch {
    return ''
  }
}

function procPids(): number[] {
  try {
    return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number)
  } catch {
    return []
  }
}

/** QUIT (requests in flight finish), then TERM for any still there after `graceMs`. */
async function endProcesses(pids: number[], graceMs: number): Promise<void> {
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0)
    } catch {
      return false
    }
    // A zombie is gone too: a container's init may never reap the workers that lost their master.
    return procStat(pid)?.state !== 'Z'
  }
  // One that ended between being found and being told (ESRCH) needs nothing more.
  const signal = (pid: number, name: NodeJS.Signals) => {
    try {
      process.kill(pid, name)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error
    }
  }
  const gone = async (ms: number) => {
    const until = Date.now() + ms
    while (Date.now() < until) {
      if (!pids.some(alive)) return true
      await new Promise((r) => setTimeout(r, 50))
    }
    return false
  }
  for (const pid of pids) signal(pid, 'SIGQUIT')
  if (!(await gone(graceMs))) {
    for (const pid of pids.filter(alive)) signal(pid, 'SIGTERM')
    await gone(5_000)
  }
}

