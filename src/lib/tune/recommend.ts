import {bdpBytes, type LinkEstimate} from '../bench/link.js'
import {RECOMMENDED_READ_AHEAD_KB, RECOMMENDED_SCHEDULER} from '../doctor/checks.js'
import type {BlockFacts, NetworkFacts} from '../system/facts.js'
import {formatBitRate, formatBytes} from '../units.js'
import type {QdiscTree} from './qdisc.js'

/**
 * One tunable, tuned-style: where it lives, what it is, what it should be and why, and the
 * commands an admin would type. `value` strings are written as they are.
 */
export interface Knob {
  id: string
  kind: 'sysctl' | 'sysfs' | 'qdisc'
  /** /proc/sys/... or /sys/block/DEV/queue/...; for qdisc, the interface name. */
  path: string
  current?: string
  recommended: string
  action: 'change' | 'keep' | 'unavailable'
  reason: string
  commands: string[]
  /** Written to /etc/sysctl.d or a udev rule by --persist. */
  persist?: {sysctl?: string; udev?: {device: string; attr: string}}
  /** For an interface's qdisc: the tree `tc` shows now and the one to make (qdisc.ts). */
  qdisc?: {now: QdiscTree; want: QdiscTree}
}

/** Caps from fasterdata: a buffer beyond 2 GiB - 1 is refused by the kernel. */
export const MAX_BUFFER = 2 ** 31 - 1
/** Room for autotuning even on short paths. */
export const MIN_BUFFER = 16 * 1024 * 1024

export interface TuneFacts {
  network: NetworkFacts
  block: BlockFacts
  link: LinkEstimate
}

export const sysctlPath = (key: string) => `/proc/sys/${key.replace(/\./g, '/')}`

function sysctl(key: string, current: string | undefined, recommended: string, reason: string, keep: boolean): Knob {
  return {
    id: key,
    kind: 'sysctl',
    path: sysctlPath(key),
    current,
    recommended,
    action: current === undefined ? 'unavailable' : keep ? 'keep' : 'change',
    reason,
    commands: [`sysctl -w ${key}="${recommended}"`],
    persist: {sysctl: `${key} = ${recommended}`},
  }
}

/** netdev_max_backlog by link speed: the queue between the NIC and the stack must hold a burst. */
export function backlogFor(speedMbps: number | undefined): number {
  if (!speedMbps) return 5000
  if (speedMbps >= 40_000) return 250_000
  if (speedMbps >= 10_000) return 30_000
  return 5000
}

export function bufferTarget(link: LinkEstimate): number | undefined {
  if (!link.bandwidthBps || !link.rttMs) return undefined
  return Math.min(MAX_BUFFER, Math.max(MIN_BUFFER, 2 * bdpBytes(link.bandwidthBps, link.rttMs)))
}

/** What tune would set, from facts alone; never lowers a value that is already higher. */
export function recommend(f: TuneFacts, only?: 'network' | 'io'): Knob[] {
  const knobs: Knob[] = []
  if (only !== 'io') knobs.push(...networkKnobs(f))
  if (only !== 'network') knobs.push(...diskKnobs(f.block))
  return knobs
}

function networkKnobs(f: TuneFacts): Knob[] {
  const n = f.network
  const knobs: Knob[] = []
  const bbr = n.availableCongestion?.includes('bbr') || n.bbrModule
  if (n.congestionControl !== undefined) {
    if (bbr || n.congestionControl === 'bbr') {
      const k = sysctl('net.ipv4.tcp_congestion_control', n.congestionControl, 'bbr', 'BBR keeps long, lossy paths full where cubic backs off; it needs kernel 4.9+', n.congestionControl === 'bbr')
      if (!n.availableCongestion?.includes('bbr') && k.action === 'change') {
        k.reason += '; tcp_bbr is a module here: setting it as root loads it'
        k.commands.unshift('modprobe tcp_bbr')
      }
      knobs.push(k)
    } else {
      knobs.push({...sysctl('net.ipv4.tcp_congestion_control', n.congestionControl, 'bbr', 'BBR is not available in this kernel (no tcp_bbr module)', false), action: 'unavailable'})
    }
  }
  if (n.defaultQdisc !== undefined && n.fqModule === false && n.defaultQdisc !== 'fq') {
    knobs.push({...sysctl('net.core.default_qdisc', n.defaultQdisc, 'fq', 'fq is not available in this kernel (no sch_fq module)', false), action: 'unavailable'})
  } else if (n.defaultQdisc !== undefined) {
    knobs.push(sysctl('net.core.default_qdisc', n.defaultQdisc, 'fq', 'fq paces BBR in the qdisc, cheaply; fasterdata prefers it to fq_codel for bulk TCP', n.defaultQdisc === 'fq'))
    if (n.iface) {
      knobs.push({
        id: `${n.iface.name}.qdisc`,
        kind: 'qdisc',
        path: n.iface.name,
        recommended: 'fq',
        action: 'change',
        reason: 'default_qdisc only applies to qdiscs created later: the live interface needs its root qdisc replaced',
        commands: [`tc qdisc replace dev ${n.iface.name} root fq`],
      })
    }
  }

  const target = bufferTarget(f.link)
  const linkWords =
    f.link.bandwidthBps && f.link.rttMs
      ? `${formatBitRate(f.link.bandwidthBps)} x ${f.link.rttMs} ms = ${formatBytes(bdpBytes(f.link.bandwidthBps, f.link.rttMs))} BDP`
      : undefined
  if (target !== undefined) {
    const why = `at least 2 x BDP (${linkWords}), between ${formatBytes(MIN_BUFFER)} and 2 GiB`
    for (const key of ['net.core.rmem_max', 'net.core.wmem_max'] as const) {
      const current = key === 'net.core.rmem_max' ? n.rmemMax : n.wmemMax
      if (current === undefined) continue
      const value = Math.max(current, target)
      knobs.push(sysctl(key, String(current), String(value), current >= target ? `already >= ${target} (${why}): never lowered` : why, current >= target))
    }
    for (const key of ['net.ipv4.tcp_rmem', 'net.ipv4.tcp_wmem'] as const) {
      const cur = key === 'net.ipv4.tcp_rmem' ? n.tcpRmem : n.tcpWmem
      if (!cur || cur.length !== 3) continue
      const max = Math.max(cur[2], target)
      knobs.push(sysctl(key, cur.join(' '), `${cur[0]} ${cur[1]} ${max}`, cur[2] >= target ? `maximum already >= ${target}: never lowered` : `autotuning may grow to ${why}`, cur[2] >= target))
    }
  }
  if (n.mtuProbing !== undefined) {
    knobs.push(sysctl('net.ipv4.tcp_mtu_probing', String(n.mtuProbing), n.mtuProbing >= 1 ? String(n.mtuProbing) : '1', 'finds a working MTU when ICMP is blocked on the path (black holes)', n.mtuProbing >= 1))
  }
  if (n.slowStartAfterIdle !== undefined) {
    knobs.push(sysctl('net.ipv4.tcp_slow_start_after_idle', String(n.slowStartAfterIdle), '0', "a connection that pauses keeps its window (tuned's network-throughput profile)", n.slowStartAfterIdle === 0))
  }
  if (n.netdevMaxBacklog !== undefined) {
    const want = backlogFor(n.iface?.speedMbps)
    const speed = n.iface?.speedMbps ? `a ${n.iface.speedMbps / 1000} Gbit/s interface` : 'an interface of unknown speed'
    knobs.push(
      sysctl(
        'net.core.netdev_max_backlog',
        String(n.netdevMaxBacklog),
        String(Math.max(want, n.netdevMaxBacklog)),
        `${want} for ${speed}: room for a burst between the NIC and TCP`,
        n.netdevMaxBacklog >= want,
      ),
    )
  }
  return knobs
}

function diskKnobs(block: BlockFacts): Knob[] {
  const knobs: Knob[] = []
  for (const d of block.disks) {
    const base = `/sys/block/${d.name}/queue`
    const want = RECOMMENDED_SCHEDULER[d.type]
    if (d.scheduler !== undefined) {
      const target = want.includes(d.scheduler) ? d.scheduler : want.find((w) => d.schedulers?.includes(w)) ?? want[0]
      const available = !d.schedulers || d.schedulers.includes(target)
      knobs.push({
        id: `${d.name}.scheduler`,
        kind: 'sysfs',
        path: `${base}/scheduler`,
        current: d.scheduler,
        recommended: target,
        action: !available ? 'unavailable' : want.includes(d.scheduler) ? 'keep' : 'change',
        reason: `${want.join(' or ')} for ${d.type === 'nvme' ? 'NVMe' : d.type} devices (Red Hat: none for NVMe, mq-deadline for SATA SSDs and HDDs)`,
        commands: [`echo ${target} > ${base}/scheduler`],
        persist: {udev: {device: d.name, attr: `ATTR{queue/scheduler}="${target}"`}},
      })
    }
    if (d.readAheadKb !== undefined) {
      const value = Math.max(d.readAheadKb, RECOMMENDED_READ_AHEAD_KB)
      knobs.push({
        id: `${d.name}.read_ahead_kb`,
        kind: 'sysfs',
        path: `${base}/read_ahead_kb`,
        current: String(d.readAheadKb),
        recommended: String(value),
        action: d.readAheadKb >= RECOMMENDED_READ_AHEAD_KB ? 'keep' : 'change',
        reason: `>= ${RECOMMENDED_READ_AHEAD_KB} KiB for large sequential reads, as tuned's throughput profile sets (loading a model)`,
        commands: [`echo ${value} > ${base}/read_ahead_kb`],
        persist: {udev: {device: d.name, attr: `ATTR{queue/read_ahead_kb}="${value}"`}},
      })
    }
  }
  return knobs
}
