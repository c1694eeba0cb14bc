import {estimateLink} from '../doctor/run.js'
import {ExitCode, MtuneError} from '../errors.js'
import {readBlock, readDisk, readNetwork} from '../system/facts.js'
import type {SystemReader} from '../system/reader.js'
import {applyKnobs, loadState, persistFile, rollback, type KnobResult, type Writer} from './apply.js'
import {commandsFor, describeTree, fqTree, isMultiQueue, pacedByFq, readTree} from './qdisc.js'
import {SYSCTL_CONF, UDEV_RULES, sysctlConf, udevRules} from './persist.js'
import {recommend, type Knob, type TuneFacts} from './recommend.js'

export interface TuneOptions {
  path: string
  bandwidthBps?: number
  rttMs?: number
  only?: 'network' | 'io'
  apply?: boolean
  persist?: boolean
  rollback?: boolean
  /** The caller's uid: writing needs root. */
  uid: number
}

export interface TuneReport {
  mode: 'suggest' | 'apply' | 'rollback'
  link: TuneFacts['link']
  knobs: Knob[]
  results: KnobResult[]
  persisted: string[]
  removed: string[]
  nothingToRollBack?: boolean
  /** Why the disk under --path has no scheduler or read-ahead to tune (tmpfs, overlay, a container). */
  noDisk?: string
}

export function gatherTuneFacts(r: SystemReader, options: Pick<TuneOptions, 'path' | 'bandwidthBps' | 'rttMs'>): TuneFacts {
  const network = readNetwork(r)
  const disk = readDisk(r, options.path)
  const link = estimateLink({bandwidthBps: options.bandwidthBps, rttMs: options.rttMs}, r.env, network.iface?.speedMbps)
  return {network, block: readBlock(r, disk.mount), link}
}

/**
 * The interface's live qdiscs, from `tc`: fq at the root of a single-queue device, or on every
 * queue of a multi-queue one (whose `mq` root stays); kept when already so, skipped without tc.
 */
async function withQdisc(r: SystemReader, knobs: Knob[]): Promise<Knob[]> {
  const out: Knob[] = []
  for (const k of knobs) {
    if (k.kind !== 'qdisc') {
      out.push(k)
      continue
    }
    const now = await readTree((c, a) => r.run(c, a), k.path)
    if (!now) {
      const there = await r.run('tc', ['-V'])
      out.push({...k, action: 'unavailable', reason: `${k.reason} (${there ? 'tc cannot read its qdiscs here' : 'tc from iproute2 is not installed'})`})
      continue
    }
    const want = fqTree(now)
    const reason = isMultiQueue(now)
      ? `a multi-queue NIC keeps mq at the root (one fq for all ${now.children.length} queues would funnel every CPU through one lock): each queue gets fq; default_qdisc covers queues created later`
      : k.reason
    out.push({...k, current: describeTree(now), recommended: describeTree(want), action: pacedByFq(now) ? 'keep' : 'change', reason, commands: commandsFor(k.path, now, want), qdisc: {now, want}})
  }
  return out
}

/** Suggest (default), apply (+ persist) or roll back; writes only as root and only on valid input. */
export async function tune(r: SystemReader, w: Writer, options: TuneOptions): Promise<TuneReport> {
  if ((options.apply || options.persist || options.rollback) && options.uid !== 0) {
    const what = options.rollback ? '--rollback' : options.persist ? '--persist' : '--apply'
    throw new MtuneError('not-root', `${what} changes kernel settings and needs root: run it with sudo (without ${what}, tune only suggests)`, ExitCode.permission)
  }
  if (options.rollback) {
    const {results, removed, nothing} = await rollback(r, w)
    return {mode: 'rollback', link: {source: 'unknown'}, knobs: [], results, persisted: [], removed, nothingToRollBack: nothing}
  }
  const facts = gatherTuneFacts(r, options)
  const knobs = await withQdisc(r, recommend(facts, options.only))
  // Said, not left out silently: --only io on tmpfs would otherwise list nothing at all.
  const noDisk = options.only !== 'network' && facts.block.none ? `${options.path}: ${facts.block.none}, no block device to tune` : undefined
  if (!options.apply && !options.persist) return {mode: 'suggest', link: facts.link, knobs, results: [], persisted: [], removed: [], ...(noDisk ? {noDisk} : {})}
  const results = await applyKnobs(r, w, knobs)
  const persisted: string[] = []
  if (options.persist) {
    // What was changed now or by an earlier --apply: the tuned state, not just today's delta.
    const saved = loadState(r)?.originals ?? {}
    const chosen = knobs.filter((k) => k.action === 'change' || k.id in saved)
    const conf = sysctlConf(chosen)
    if (conf) {
      persistFile(r, SYSCTL_CONF, conf)
      persisted.push(SYSCTL_CONF)
    }
    const rules = udevRules(chosen)
    if (rules) {
      persistFile(r, UDEV_RULES, rules)
      persisted.push(UDEV_RULES)
    }
  }
  return {mode: 'apply', link: facts.link, knobs, results, persisted, removed: [], ...(noDisk ? {noDisk} : {})}
}
