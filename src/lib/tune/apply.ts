import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {removeFileDurably, writeFileAtomic} from '../fs-atomic.js'
import {ExitCode, MtuneError, errorMessage} from '../errors.js'
import type {SystemReader} from '../system/reader.js'
import type {Knob} from './recommend.js'
import {describeTree, deserialiseTree, sameTree, serialiseTree, setTree} from './qdisc.js'

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

/** Atomically: a crash while saving must never lose the originals saved before. */
export function saveState(r: SystemReader, state: TuneState): void {
  writeFileAtomic(join(r.root, STATE_PATH), JSON.stringify(state, null, 2) + '\n', 0o600)
}

export interface KnobResult {
  id: string
  /** unavailable: this kernel cannot have it (say, no sch_fq): not attempted, or refused as missing. */
  status: 'applied' | 'unchanged' | 'failed' | 'restored' | 'unavailable'
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

const why = (error: unknown) => {
  const code = (error as {code?: string}).code
  if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') return `not writable here (${code}: read-only in a container, or not root)`
  if (code === 'EINVAL') return 'the kernel refused the value (EINVAL)'
  if (code === 'ENOENT') return 'not available in this kernel (ENOENT: a module such as sch_fq or tcp_bbr is missing)'
  return errorMessage(error)
}

/** A write the kernel refused because it lacks the feature (a qdisc or congestion control it cannot load). */
const missingFeature = (error: unknown) => (error as {code?: string}).code === 'ENOENT'

/** sch_fq is what default_qdisc=fq and every fq qdisc need: once a write shows it missing, neither is tried again. */
const needsFq = (k: Knob) => k.kind === 'qdisc' || (k.id === 'net.core.default_qdisc' && k.recommended === 'fq')

/**
 * tuned's order: save every original first, then apply, then read back each value. A setting
 * this kernel cannot have is reported as unavailable, not failed; a write that should have
 * worked and did not is failed.
 */
export async function applyKnobs(r: SystemReader, w: Writer, knobs: Knob[]): Promise<KnobResult[]> {
  const state: TuneState = loadState(r) ?? {version: 1, savedAt: new Date().toISOString(), originals: {}, persisted: {}}
  const changes = knobs.filter((k) => k.action === 'change')
  const savedNow = new Set<string>()
  for (const k of changes) {
    // Applying twice must not save tuned values as the originals.
    if (state.originals[k.id]) continue
    const raw = k.kind === 'qdisc' ? k.qdisc && serialiseTree(k.qdisc.now) : r.read(k.path)
    if (raw !== undefined) {
      state.originals[k.id] = {kind: k.kind, path: k.path, value: k.kind === 'sysfs' ? normalise(k, raw)! : raw}
      savedNow.add(k.id)
    }
  }
  saveState(r, state)

  const results: KnobResult[] = []
  let fqMissing = false
  for (const k of knobs) {
    if (k.action !== 'change') {
      results.push({id: k.id, status: k.action === 'keep' ? 'unchanged' : 'unavailable', before: k.current, after: k.current, ...(k.action === 'unavailable' ? {error: k.reason} : {})})
      continue
    }
    if (fqMissing && needsFq(k)) {
      results.push({id: k.id, status: 'unavailable', before: k.current, after: k.current, error: 'skipped: fq is not available in this kernel (no sch_fq)'})
      continue
    }
    try {
      if (k.kind === 'qdisc') {
        if (!k.qdisc) throw new Error('the interface\'s qdiscs could not be read')
        const after = await setTree(w.run, k.path, k.qdisc.want)
        const ok = sameTree(after, k.qdisc.want)
        results.push({id: k.id, status: ok ? 'applied' : 'failed', before: k.current, after: after && describeTree(after), ...(ok ? {} : {error: `tc shows ${after ? describeTree(after) : 'nothing'}`})})
        continue
      }
      w.write(k.path, k.recommended)
      const after = normalise(k, r.read(k.path))
      const ok = after === normalise(k, k.recommended)
      results.push({id: k.id, status: ok ? 'applied' : 'failed', before: k.current, after, ...(ok ? {} : {error: `wrote "${k.recommended}", reads back "${after}"`})})
    } catch (error) {
      if (missingFeature(error)) {
        fqMissing ||= needsFq(k)
        results.push({id: k.id, status: 'unavailable', before: k.current, after: k.current, error: needsFq(k) ? 'fq is not available in this kernel (no sch_fq)' : why(error)})
      } else results.push({id: k.id, status: 'failed', before: k.current, error: why(error)})
    }
  }
  // A write that failed changed nothing: rolling it back would only disturb the system.
  const unchanged = results.filter((x) => (x.status === 'failed' || x.status === 'unavailable') && savedNow.has(x.id))
  if (unchanged.length > 0) {
    for (const x of unchanged) delete state.originals[x.id]
    if (Object.keys(state.originals).length === 0 && Object.keys(state.persisted).length === 0) removeFileDurably(join(r.root, STATE_PATH))
    else saveState(r, state)
  }
  return results
}

/**
 * Put back every saved original and remove what --persist wrote, reading each back: a value
 * that does not read back as saved is reported as failed, not "restored", and stays in the state
 * for another try. A second run finds nothing to do.
 */
export async function rollback(r: SystemReader, w: Writer): Promise<{results: KnobResult[]; removed: string[]; nothing: boolean}> {
  const state = loadState(r)
  if (!state) return {results: [], removed: [], nothing: true}
  const results: KnobResult[] = []
  // Sysctls first: a qdisc re-created afterwards then gets the original default_qdisc.
  const entries = Object.entries(state.originals).sort(([, a], [, b]) => Number(a.kind === 'qdisc') - Number(b.kind === 'qdisc'))
  for (const [id, o] of entries) {
    try {
      if (o.kind === 'qdisc') {
        const want = deserialiseTree(o.value)
        const after = await setTree(w.run, o.path, want)
        const ok = sameTree(after, want)
        results.push({id, status: ok ? 'restored' : 'failed', after: after && describeTree(after), ...(ok ? {} : {error: `wanted ${describeTree(want)}, tc shows ${after ? describeTree(after) : 'nothing'}`})})
        if (ok) delete state.originals[id]
      } else {
        w.write(o.path, o.value)
        const after = normalise(o, r.read(o.path))
        const ok = after === normalise(o, o.value)
        results.push({id, status: ok ? 'restored' : 'failed', after, ...(ok ? {} : {error: `reads back "${after}"`})})
        if (ok) delete state.originals[id]
      }
    } catch (error) {
      results.push({id, status: 'failed', error: why(error)})
    }
  }
  const removed: string[] = []
  for (const [path, before] of Object.entries(state.persisted)) {
    const full = join(r.root, path)
    if (before === null) removeFileDurably(full)
    else writeFileAtomic(full, before)
    removed.push(path)
  }
  state.persisted = {}
  if (Object.keys(state.originals).length === 0) removeFileDurably(join(r.root, STATE_PATH))
  else saveState(r, state)
  return {results, removed, nothing: false}
}

/** Record, then write (atomically), a file that --persist owns. */
export function persistFile(r: SystemReader, path: string, content: string): void {
  const state = loadState(r) ?? {version: 1 as const, savedAt: new Date().toISOString(), originals: {}, persisted: {}}
  const full = join(r.root, path)
  if (!(path in state.persisted)) state.persisted[path] = existsSync(full) ? readFileSync(full, 'utf8') : null
  saveState(r, state)
  writeFileAtomic(full, content)
}
