import type {CommandResult} from '../system/reader.js'

/**
 * An interface's qdiscs as `tc qdisc show dev IFACE` lists them: the root, and on a multi-queue
 * NIC (root `mq`) one child per transmit queue (`parent :1`, `parent :2`, ...).
 *
 * Why the children matter: server NICs are multi-queue. Replacing their `mq` root with one `fq`
 * funnels every CPU through one queue lock (a regression at 25-100 GbE); the right change keeps
 * `mq` and gives each queue `fq`. Rollback must put back both the root kind and the children's.
 */
export interface QdiscTree {
  root: string
  children: Array<{parent: string; kind: string}>
}

export type Run = (command: string, args: string[]) => Promise<CommandResult | undefined>

export function parseQdiscTree(stdout: string): QdiscTree | undefined {
  let root: string | undefined
  const children: QdiscTree['children'] = []
  for (const line of stdout.split('\n')) {
    const m = /^qdisc (\S+) \S+(?: dev \S+)? (root|parent (\S+))/.exec(line.trim())
    if (!m) continue
    if (m[2] === 'root') root = m[1]
    else children.push({parent: m[3], kind: m[1]})
  }
  if (!root) return undefined
  const order = (p: string) => Number.parseInt(p.replace(/^.*:/, ''), 16) || 0
  return {root, children: root === 'mq' ? children.sort((a, b) => order(a.parent) - order(b.parent)) : []}
}

export const isMultiQueue = (t: QdiscTree) => t.root === 'mq'

/** fq everywhere packets leave: the root on a single-queue device, every queue on a multi-queue one. */
export function pacedByFq(t: QdiscTree): boolean {
  return isMultiQueue(t) ? t.children.length > 0 && t.children.every((c) => c.kind === 'fq') : t.root === 'fq'
}

/** In words: `fq`, or `mq, 8 queues: fq_codel`. */
export function describeTree(t: QdiscTree): string {
  if (!isMultiQueue(t)) return t.root
  const kinds = [...new Set(t.children.map((c) => c.kind))]
  return `mq, ${t.children.length} queue${t.children.length === 1 ? '' : 's'}: ${kinds.join('/') || 'none'}`
}

/** What tune aims for: the same tree with fq wherever packets are queued. */
export function fqTree(t: QdiscTree): QdiscTree {
  return isMultiQueue(t) ? {root: 'mq', children: t.children.map((c) => ({...c, kind: 'fq'}))} : {root: 'fq', children: []}
}

export function sameTree(a: QdiscTree | undefined, b: QdiscTree): boolean {
  if (!a || a.root !== b.root || a.children.length !== b.children.length) return false
  return b.children.every((c) => a.children.some((x) => x.parent === c.parent && x.kind === c.kind))
}

/** The commands an admin would type to get `want` on IFACE from `now`. */
export function commandsFor(iface: string, now: QdiscTree, want: QdiscTree): string[] {
  if (!isMultiQueue(want)) return [`tc qdisc replace dev ${iface} root ${want.root}`]
  const root = now.root === 'mq' ? [] : [`tc qdisc replace dev ${iface} root mq`]
  const kinds = new Set(want.children.map((c) => c.kind))
  if (want.children.length > 4 && kinds.size === 1) {
    return [...root, `for q in $(tc qdisc show dev ${iface} | awk '/parent :/ {print $5}'); do tc qdisc replace dev ${iface} parent $q ${[...kinds][0]}; done`]
  }
  return [...root, ...want.children.map((c) => `tc qdisc replace dev ${iface} parent ${c.parent} ${c.kind}`)]
}

export async function readTree(run: Run, iface: string): Promise<QdiscTree | undefined> {
  const r = await run('tc', ['qdisc', 'show', 'dev', iface])
  return r && r.exitCode === 0 ? parseQdiscTree(r.stdout) : undefined
}

async function tc(run: Run, args: string[]): Promise<void> {
  const res = await run('tc', ['qdisc', ...args])
  if (!res) throw new Error('tc not found (iproute2)')
  if (res.exitCode !== 0) {
    const text = (res.stderr || res.stdout).trim()
    // What tc says when the kernel lacks the qdisc (no sch_fq, and no module to load).
    if (/unknown|not supported|no such file/i.test(text)) throw Object.assign(new Error(`tc: ${text || `exit ${res.exitCode}`}`), {code: 'ENOENT'})
    throw new Error(`tc failed: ${text || `exit ${res.exitCode}`}`)
  }
}

/**
 * Make IFACE's tree `want`: the root first (only when its kind changes), then each queue's child,
 * one at a time. Returns the tree read back, for the caller to compare.
 */
export async function setTree(run: Run, iface: string, want: QdiscTree): Promise<QdiscTree | undefined> {
  const now = await readTree(run, iface)
  if (!isMultiQueue(want)) {
    if (now?.root !== want.root) await tc(run, ['replace', 'dev', iface, 'root', want.root])
    return readTree(run, iface)
  }
  if (now?.root !== 'mq') await tc(run, ['replace', 'dev', iface, 'root', 'mq'])
  for (const c of want.children) {
    const current = (await readTree(run, iface))?.children.find((x) => x.parent === c.parent)
    if (current?.kind !== c.kind) await tc(run, ['replace', 'dev', iface, 'parent', c.parent, c.kind])
  }
  return readTree(run, iface)
}

/** For the state file: the tree as JSON. Older state files saved the root kind alone. */
export const serialiseTree = (t: QdiscTree) => JSON.stringify(t)
export function deserialiseTree(value: string): QdiscTree {
  try {
    const t = JSON.parse(value) as QdiscTree
    if (typeof t?.root === 'string' && Array.isArray(t.children)) return t
  } catch {
    // the older form
  }
  return {root: value.trim(), children: []}
}
