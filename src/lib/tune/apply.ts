import {existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {ExitCode, MtuneError, errorMessage} from '../errors.js'
import type {SystemReader} from '../system/reader.js'
import type {Knob} from './recommend.js'

/**
 * How values reach the system: files under /proc/sys and /sys (below the reader's root), and
 * `tc` for an interface's qdisc. Tests replace it with one that emulates sysfs.
 */
export interface Writer {
  write(path: string, value: string): void
  run(command: string, args: string[]): Promise<{exitCode: number; stdout: string; stderr?: string} | undefined>
}

export function fileWriter(r: SystemReader): Writer {
  return {
    write: (path, value) => writeFileSync(join(r.root, path), value),
    run: (command, args) => r.run(command, args, 5_000),
  }
}

/** The originals, saved before the first write, so that any crash can still be rolled back. */
export interface TuneState {
  version: 1
  savedAt: string
  originals: Record<string, {kind: Knob['kind']; path: string; value: string}>
  /** Files written by --persist, with what was there before (null: nothing). */
  persisted: Record<string, string | null>
}

export const STATE_PATH = '/var/lib/mtune/tune-state.json'

export function loadState(r: SystemReader): TuneState | undefined {
  const text = r.read(STATE_PATH)
  if (!text) return undefined
  try {
    const state = JSON.parse(text) as TuneState
    return state.version === 1 ? state : undefined
  } catch {
    throw new MtuneError('bad-state', `${join(r.root, STATE_PATH)} is unreadable: restore it from a backup or remove it (the originals it held are then lost)`, ExitCode.failure)
  }
}

export function saveState(r: SystemReader, state: TuneState): void {
  const path = join(r.root, STATE_PATH)
  mkdirSync(dirname(path), {recursive: true})
  writeFileSync(`${path}.tmp`, JSON.stringify(state, null, 2) + '\n')
  renameSync(`${path}.tmp`, path)
}

export interface KnobResult {
  id: string
  status: 'applied' | 'unchanged' | 'failed' | 'restored'
  before?: string
  after?: string
  error?: string
}

/** The value as the kernel shows it, for comparing: the active scheduler, numbers as numbers. */
export function normalise(knob: Pick<Knob, 'kind' | 'path'>, raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined
  const text = raw.trim()
  if (knob.path.endsWith('/scheduler')) return /\[([^\]]+)\]/.exec(text)?.[1] ?? text.split(/\s+/)[0]
  return text.split(/\s+/).join(' ')
}

/** The root qdisc's kind from `tc qdisc show dev IFACE root`. */
export const parseQdisc = (stdout: string): string | undefined => /^qdisc (\S+)/m.exec(stdout)?.[1]

async function readQdisc(w: Writer, iface: string): Promise<string | undefined> {
  const r = await w.run('tc', ['qdisc', 'show', 'dev', iface, 'root'])
  return r && r.exitCode === 0 ? parseQdisc(r.stdout) : undefined
}

const why = (error: unknown) => {
  const code = (error as {code?: string}).code
  if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') return `not writable here (${code}: read-only in a container, or not root)`
  if (code === 'EINVAL') return 'the kernel refused the value (EINVAL)'
  if (code === 'ENOENT') return 'not available in this kernel (ENOENT: a module such as sch_fq or tcp_bbr is missing)'
  return errorMessage(error)
}

/** tuned's order: save every original first, then apply, then read back each value. */
export async function applyKnobs(r: SystemReader, w: Writer, knobs: Knob[]): Promise<KnobResult[]> {
  const state: TuneState = loadState(r) ?? {version: 1, savedAt: new Date().toISOString(), originals: {}, persisted: {}}
  const changes = knobs.filter((k) => k.action === 'change')
  const savedNow = new Set<string>()
  for (const k of changes) {
    // Applying twice must not save tuned values as the originals.
    if (state.originals[k.id]) continue
    const raw = k.kind === 'qdisc' ? await readQdisc(w, k.path) : r.read(k.path)
    if (raw !== undefined) {
      state.originals[k.id] = {kind: k.kind, path: k.path, value: k.kind === 'sysfs' ? normalise(k, raw)! : raw}
      savedNow.add(k.id)
    }
  }
  saveState(r, state)

  const results: KnobResult[] = []
  for (const k of knobs) {
    if (k.action !== 'change') {
      results.push({id: k.id, status: k.action === 'keep' ? 'unchanged' : 'failed', before: k.current, after: k.current, ...(k.action === 'unavailable' ? {error: 'not available on this system'} : {})})
      continue
    }
    try {
      if (k.kind === 'qdisc') {
        const before = await readQdisc(w, k.path)
        const res = await w.run('tc', ['qdisc', 'replace', 'dev', k.path, 'root', k.recommended])
        if (!res || res.exitCode !== 0) throw new Error(res ? `tc failed: ${(res.stderr || res.stdout).trim() || `exit ${res.exitCode}`}` : 'tc not found (iproute2)')
        const after = await readQdisc(w, k.path)
        results.push({id: k.id, status: after === k.recommended ? 'applied' : 'failed', before, after, ...(after === k.recommended ? {} : {error: `tc shows ${after}`})})
        continue
      }
      w.write(k.path, k.recommended)
      const after = normalise(k, r.read(k.path))
      const ok = after === normalise(k, k.recommended)
      results.push({id: k.id, status: ok ? 'applied' : 'failed', before: k.current, after, ...(ok ? {} : {error: `wrote "${k.recommended}", reads back "${after}"`})})
    } catch (error) {
      results.push({id: k.id, status: 'failed', before: k.current, error: why(error)})
    }
  }
  // A write that failed changed nothing: rolling it back would only disturb the system.
  const unchanged = results.filter((x) => x.status === 'failed' && savedNow.has(x.id))
  if (unchanged.length > 0) {
    for (const x of unchanged) delete state.originals[x.id]
    if (Object.keys(state.originals).length === 0 && Object.keys(state.persisted).length === 0) rmSync(join(r.root, STATE_PATH), {force: true})
    else saveState(r, state)
  }
  return results
}

/** Put back every saved original and remove what --persist wrote; a second run finds nothing to do. */
export async function rollback(r: SystemReader, w: Writer): Promise<{results: KnobResult[]; removed: string[]; nothing: boolean}> {
  const state = loadState(r)
  if (!state) return {results: [], removed: [], nothing: true}
  const results: KnobResult[] = []
  for (const [id, o] of Object.entries(state.originals)) {
    try {
      if (o.kind === 'qdisc') {
        // Deleting the root qdisc lets the kernel create the default one again (restored above it).
        const res = await w.run('tc', ['qdisc', 'del', 'dev', o.path, 'root'])
        if (!res) throw new Error('tc not found (iproute2)')
        results.push({id, status: 'restored', after: (await readQdisc(w, o.path)) ?? o.value})
      } else {
        w.write(o.path, o.value)
        const after = normalise(o, r.read(o.path))
        const ok = after === normalise(o, o.value)
        results.push({id, status: ok ? 'restored' : 'failed', after, ...(ok ? {} : {error: `reads back "${after}"`})})
      }
      delete state.originals[id]
    } catch (error) {
      results.push({id, status: 'failed', error: why(error)})
    }
  }
  const removed: string[] = []
  for (const [path, before] of Object.entries(state.persisted)) {
    const full = join(r.root, path)
    if (before === null) rmSync(full, {force: true})
    else writeFileSync(full, before)
    removed.push(path)
  }
  state.persisted = {}
  if (Object.keys(state.originals).length === 0) rmSync(join(r.root, STATE_PATH), {force: true})
  else saveState(r, state)
  return {results, removed, nothing: false}
}

/** Record, then write, a file that --persist owns. */
export function persistFile(r: SystemReader, path: string, content: string): void {
  const state = loadState(r) ?? {version: 1 as const, savedAt: new Date().toISOString(), originals: {}, persisted: {}}
  const full = join(r.root, path)
  if (!(path in state.persisted)) state.persisted[path] = existsSync(full) ? readFileSync(full, 'utf8') : null
  saveState(r, state)
  mkdirSync(dirname(full), {recursive: true})
  writeFileSync(full, content)
}
