import {createHash, randomUUID} from 'node:crypto'
import {linkSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, utimesSync, writeFileSync} from 'node:fs'
import {hostname} from 'node:os'
import {setTimeout as sleep} from 'node:timers/promises'
import {errorMessage} from '../errors.js'

/**
 * One pull at a time per part file, across processes: two pulls of the same file (a command
 * run twice, the ranks of one training job pulling the same model into one cache) would
 * otherwise write the same part file and journal at once, and the first to finish would
 * rename it from under the other. The second one waits, as cargo does for its package cache,
 * and then finds the file complete.
 *
 * `PART.lock` names its holder. It is written under a unique name and hard-linked into place,
 * so it is never seen half-written. A holder that is gone (a process of this host that no
 * longer runs, or one from before a reboot) loses it at once, so a pull killed with SIGKILL
 * resumes without waiting. A holder whose pid cannot be looked up from here (another host on a
 * shared filesystem, or another container of this host: host networking gives it our host
 * name, not our pids) loses it when it has not refreshed the lock for STALE_MS.
 */
const REFRESH_MS = 5_000
const STALE_MS = 30_000
const POLL_MS = 250

export interface LockHolder {
  pid: number
  host: string
  bootId?: string
  /** The pid namespace the pid belongs to (Linux). */
  pidns?: string
  token: string
  /** A digest of what the holder pulls (its URL): never the URL, which can hold a token. */
  source?: string
  /** The sha256 the holder checks the file against before putting it in place, when it has one. */
  sha256?: string
}

export interface LockOptions {
  bootId?: string
  signal?: AbortSignal
  /** Called once when another pull holds the lock and this one starts waiting. */
  onWait?: (holder: LockHolder | undefined) => void
  /** Called at each look at the lock while waiting (every POLL_MS): to show the holder's progress. */
  whileWaiting?: () => void
  /** Whether a process of this host runs; replaceable in tests. */
  alive?: (pid: number) => boolean
  /** This process's pid namespace; replaceable in tests. */
  pidns?: string
  /** What this pull fetches, so that one waiting on it can tell it was the same (sourceId). */
  source?: string
  /** The sha256 this pull checks the file against, for one waiting on it (LockHolder.sha256). */
  sha256?: string
}

/** What goes into the lock for `source`: a digest, so that a token in a URL is not written to disk. */
export const sourceId = (source: string): string => createHash('sha256').update(source).digest('hex')

export class PullLock {
  private readonly refresh: NodeJS.Timeout

  /**
   * `waitedOnSame`: this pull waited on one that fetched the same source (and so may have put
   * the file in place meanwhile), as against one that fetched another URL to the same path.
   * `checkedBy`: the sha256 that one (every one, if several) checked the file against.
   */
  private constructor(
    readonly partPath: string,
    private readonly path: string,
    private readonly token: string,
    readonly waitedOnSame = false,
    readonly checkedBy?: string,
  ) {
    this.refresh = setInterval(() => {
      const now = new Date()
      try {
        utimesSync(this.path, now, now)
      } catch {
        // Gone or taken over: nothing to refresh; release() checks the token before removing.
      }
    }, REFRESH_MS)
    this.refresh.unref()
  }

  /** Waits until no other pull holds the lock of `partPath`, then holds it. */
  static async acquire(partPath: string, options: LockOptions = {}): Promise<PullLock> {
    const path = `${partPath}.lock`
    const me = {...thisProcess(options.bootId, options.pidns, options.source), ...(options.sha256 ? {sha256: options.sha256} : {})}
    let waiting = false
    let same = false
    let checkedBy: string | undefined
    let vanished = 0
    for (;;) {
      if (create(path, me)) return new PullLock(partPath, path, me.token, same, checkedBy)
      const seen = inspect(path)
      // Released between the two looks: try again at once rather than wait on no one (a few
      // times: a lock path that stat cannot follow, a dangling link, would loop).
      if (!seen && vanished++ < 3) continue
      if (me.source && seen?.holder?.source === me.source) {
        const digest = typeof seen.holder.sha256 === 'string' ? seen.holder.sha256 : undefined
        checkedBy = !same || checkedBy === digest ? digest : undefined
        same = true
      }
      if (seen && isStale(seen, me, options.alive ?? isAlive)) {
        takeOver(path, seen.ino)
        continue
      }
      if (!waiting) {
        waiting = true
        options.onWait?.(seen?.holder)
      }
      options.whileWaiting?.()
      await sleep(POLL_MS, undefined, {signal: options.signal})
    }
  }

  release(): void {
    clearInterval(this.refresh)
    if (inspect(this.path)?.holder?.token === this.token) rmSync(this.path, {force: true})
  }
}

/**
 * The pull that holds the lock of `partPath` now, as a second pull would judge it: one of this
 * host that still runs, or one elsewhere that keeps refreshing it. Undefined when none does
 * (no lock, or a stale one). For mtune verify, which says "being pulled now" rather than
 * "interrupted" of a file a pull is still writing.
 */
export function liveHolder(partPath: string, bootId?: string): LockHolder | undefined {
  const seen = inspect(`${partPath}.lock`)
  if (!seen?.holder) return undefined
  return isStale(seen, thisProcess(bootId), isAlive) ? undefined : seen.holder
}

/** A holder as a user reads it: its pid, and its host where that is not this one. */
export const holderWords = (holder: LockHolder): string => `pid ${holder.pid}${holder.host === ownHost() ? '' : ` on ${holder.host}`}`

/** This process as a lock's holder. */
const thisProcess = (bootId?: string, pidns = ownPidNamespace(), source?: string): LockHolder => ({
  pid: process.pid,
  host: ownHost(),
  bootId,
  pidns,
  token: randomUUID(),
  source,
})

/** Creates the lock unless one exists. */
function create(path: string, me: LockHolder): boolean {
  const staged = `${path}.${me.token}`
  writeFileSync(staged, JSON.stringify(me))
  try {
    linkSync(staged, path)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false
    // A filesystem without hard links: an exclusive create, briefly empty (see isStale).
    try {
      writeFileSync(path, JSON.stringify(me), {flag: 'wx'})
      return true
    } catch (again) {
      if ((again as NodeJS.ErrnoException).code === 'EEXIST') return false
      throw new Error(`cannot create the lock ${path}: ${errorMessage(again)}`, {cause: again})
    }
  } finally {
    rmSync(staged, {force: true})
  }
}

interface Seen {
  ino: number
  mtimeMs: number
  holder?: LockHolder
}

function inspect(path: string): Seen | undefined {
  try {
    const info = statSync(path)
    let holder: LockHolder | undefined
    try {
      const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockHolder>
      if (typeof parsed.pid === 'number' && typeof parsed.host === 'string' && typeof parsed.token === 'string') holder = parsed as LockHolder
    } catch {
      // Being written by an exclusive create, or damaged: judged by its age alone.
    }
    return {ino: info.ino, mtimeMs: info.mtimeMs, holder}
  } catch {
    return undefined
  }
}

function isStale(seen: Seen, me: LockHolder, alive: (pid: number) => boolean): boolean {
  if (Date.now() - seen.mtimeMs > STALE_MS) return true
  const holder = seen.holder
  if (!holder || holder.host !== me.host) return false
  if (holder.bootId && me.bootId && holder.bootId !== me.bootId) return true
  if (holder.pidns !== me.pidns) return false
  return !alive(holder.pid)
}

/**
 * This process's pid namespace and host name, read once per process: a pull takes a lock per
 * file, and a dataset has thousands (each was a readlink and a uname).
 */
function ownPidNamespace(): string | undefined {
  if (pidNamespace === null) {
    try {
      pidNamespace = readlinkSync('/proc/self/ns/pid')
    } catch {
      pidNamespace = undefined
    }
  }
  return pidNamespace
}

let pidNamespace: string | undefined | null = null
const ownHost = (): string => (host ??= hostname())
let host: string | undefined

/**
 * Removes a stale lock, unless another process took it over since it was judged: the lock is
 * moved aside, and put back if it is not the one judged stale.
 */
function takeOver(path: string, ino: number): void {
  const aside = `${path}.${randomUUID()}.stale`
  try {
    renameSync(path, aside)
  } catch {
    return
  }
  try {
    if (statSync(aside).ino !== ino) linkSync(aside, path)
  } catch {
    // A third process created a lock in between: it holds it, and the one moved aside (a
    // window of microseconds) is lost.
  } finally {
    rmSync(aside, {force: true})
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}
