import {bdpBytes, linkFlags, linkOrigin, type LinkEstimate} from '../bench/link.js'
import type {BlockFacts, DiskFacts, EnvFacts, GpuFacts, MemoryFacts, NetworkFacts} from '../system/facts.js'
import {hideCredentials, proxyConfig, proxyFor, proxyProblem} from '../net/proxy-env.js'
import {hfHubOffline} from '../env-settings.js'
import {formatBitRate, formatBytes, formatRate} from '../units.js'
import {bytes, finding, type Finding, type Value} from './finding.js'

/** Everything the checks decide from: gathered first, then judged by pure functions. */
export interface DoctorFacts {
  /** Bytes of the model, when known: what a pull writes. */
  size?: number
  /** What a runtime loads of it, for RAM and VRAM (a repo's safetensors, one of its GGUF variants); default size. */
  loads?: number
  disk: DiskFacts
  block: BlockFacts
  memory: MemoryFacts
  gpus: GpuFacts
  network: NetworkFacts
  env: EnvFacts
  link: LinkEstimate
  /** The cache or hub endpoint this machine is set to use (MTUNE_CACHE, else HF_ENDPOINT), as probed. */
  cache?: CacheProbe
  /** Each proxy the variables name, as a TCP connection to it went. */
  proxies?: ProxyProbe[]
  platform?: NodeJS.Platform
}

const OS_NAMES: Partial<Record<NodeJS.Platform, string>> = {darwin: 'macOS', win32: 'Windows', freebsd: 'FreeBSD'}

/** A Linux-only group on another system: said once, as not applicable (not unknown). */
export function notApplicable(group: 'network' | 'io', platform: NodeJS.Platform): Finding {
  const what = group === 'network' ? 'TCP sysctls, qdiscs and BBR are Linux settings' : 'block schedulers and read-ahead are Linux settings'
  return finding(group, 'not_applicable', 'info', group === 'network' ? 'Network stack' : 'Disk I/O', `not applicable on ${OS_NAMES[platform] ?? platform}: ${what}`)
}

export interface CacheProbe {
  url: string
  from: 'MTUNE_CACHE' | 'HF_ENDPOINT'
  /** It answered HTTP at all. */
  answers: boolean
  /** Its /-/mtune page says it is an mtune cache. */
  mtune: boolean
  ms?: number
  /** The plain file mirrors its page lists (serve --origin): URLs under them are pulled through it. */
  origins?: Record<string, string>
  /** Why a pull refuses the value (not a URL, another scheme), when it does. */
  invalid?: string
}

export interface ProxyProbe {
  /** HOST:PORT, as the variable names it. */
  proxy: string
  answers: boolean
  /** Why not: connection refused, host not found, no answer within the deadline. */
  error?: string
  ms?: number
}

const GiB = 1024 ** 3
const pct = (part: number, whole: number) => `${Math.round((part / whole) * 100)}%`

// ---------------------------------------------------------------- disk

/** Room to spare beyond the model: filesystems slow down and fail near full. */
export const headroom = (size: number) => Math.max(GiB, Math.ceil(size * 0.05))

const NETWORK_FS = /^(nfs4?|cifs|smb3|ceph|glusterfs|9p|virtiofs|fuse\.(sshfs|s3fs|gcsfuse|rclone|juicefs))$/
/** The kernel's own filesystems: root may open their files, but no model can be written there. */
const KERNEL_FS = /^(proc|sysfs|devpts|debugfs|tracefs|securityfs|cgroup2?|bpf|configfs|pstore|efivarfs|mqueue|fusectl|binfmt_misc|autofs|nsfs|rpc_pipefs)$/

/** @param missing what a pull would still fetch, where part of the model is on disk already */
export function diskChecks(f: DoctorFacts, missing?: number): Finding[] {
  const out: Finding[] = []
  const {disk} = f
  const size = missing ?? f.size
  const where = disk.directory
  if (disk.freeBytes === undefined) out.push(finding('disk', 'space', 'unknown', 'Free space', `cannot statfs ${where}`))
  else if (size === undefined) {
    out.push(finding('disk', 'space', 'info', 'Free space', `${formatBytes(disk.freeBytes)} free on ${where} (model size unknown)`, {free: bytes(disk.freeBytes), total: bytes(disk.totalBytes)}))
  } else {
    const spare = headroom(size)
    const values = {free: bytes(disk.freeBytes), total: bytes(disk.totalBytes), needed: bytes(size), headroom: bytes(spare)}
    const partly = f.size !== undefined && size < f.size
    const needs = !partly ? `model needs ${formatBytes(size)}` : size === 0 ? `the model (${formatBytes(f.size!)}) is on disk already` : `model needs ${formatBytes(size)} more of its ${formatBytes(f.size!)}`
    const summary = `${formatBytes(disk.freeBytes)} free on ${where}, ${needs}`
    if (disk.freeBytes < size) {
      out.push(finding('disk', 'space', 'fail', 'Free space', `${summary}: ${formatBytes(size - disk.freeBytes)} short`, values, {fix: `free ${formatBytes(size + spare - disk.freeBytes)} on that filesystem (what is short, and ${formatBytes(spare)} to spare: filesystems slow down and fail when nearly full), or pull elsewhere (--path for doctor; -o, --local-dir or the cache variables for pull)`}))
    } else if (disk.freeBytes < size + spare) {
      out.push(finding('disk', 'space', 'warn', 'Free space', `${summary}: less than ${formatBytes(spare)} would be left`, values, {fix: `free about ${formatBytes(size + spare - disk.freeBytes)} more: filesystems slow down and fail when nearly full`}))
    } else out.push(finding('disk', 'space', 'pass', 'Free space', `${summary}${size > 0 ? ' (pulls write in place: no temporary copy)' : ''}`, values))
  }

  const fsType = disk.mount?.fsType
  if (!fsType) out.push(finding('disk', 'filesystem', 'unknown', 'Filesystem', 'unknown (no /proc/self/mountinfo)'))
  else {
    const values = {type: {value: fsType}, mountPoint: {value: disk.mount!.mountPoint}, source: {value: disk.mount!.source}}
    const summary = `${fsType} on ${disk.mount!.mountPoint}`
    if (KERNEL_FS.test(fsType)) {
      out.push(finding('disk', 'filesystem', 'fail', 'Filesystem', `${summary}: a kernel filesystem, not a disk`, values, {fix: '--path names the directory the model goes to, on a disk'}))
    } else if (NETWORK_FS.test(fsType)) {
      out.push(finding('disk', 'filesystem', 'warn', 'Filesystem', `${summary}: a network filesystem`, values, {fix: 'pull to a local disk (NVMe if you have one) and load from there; network filesystems are slow and fragile for multi-GB writes and mmap'}))
    } else if (fsType === 'overlay') {
      out.push(finding('disk', 'filesystem', 'warn', 'Filesystem', `${summary}: a container's overlay`, values, {fix: 'mount a volume for models (docker run -v /models:/models): data in the overlay disappears with the container and writes are slower'}))
    } else if (fsType === 'tmpfs' || fsType === 'ramfs') {
      out.push(finding('disk', 'filesystem', 'warn', 'Filesystem', `${summary}: held in RAM`, values, {fix: 'pull to a disk: a model on tmpfs occupies memory, and again when it is loaded'}))
    } else out.push(finding('disk', 'filesystem', 'pass', 'Filesystem', summary, values))
  }

  // A --path not made yet is judged by the directory it would be created in: say which.
  const created = disk.path !== where ? ` (${disk.path} does not exist yet: it would be created there)` : ''
  if (fsType && KERNEL_FS.test(fsType)) {
    out.push(finding('disk', 'writable', 'fail', 'Writable', `no file can be made in ${where}${created}: a kernel filesystem`, {}, {fix: '--path names the directory the model goes to, on a disk'}))
  } else if (disk.fileInTheWay) {
    out.push(finding('disk', 'writable', 'fail', 'Writable', `${disk.fileInTheWay} is a file, not a directory: nothing can be written to ${disk.path}`, {}, {fix: '--path names the directory the model goes to'}))
  } else out.push(
    disk.writable
      ? finding('disk', 'writable', 'pass', 'Writable', `${where} is writable${created}`)
      : finding('disk', 'writable', 'fail', 'Writable', `${where} is not writable by this user${created}`, {}, {fix: `choose a directory you can write (--path), or fix its owner: sudo chown -R $USER ${where}`}),
  )

  if (disk.inodesTotal === undefined) out.push(finding('disk', 'inodes', 'unknown', 'Free inodes', 'unknown'))
  else if (disk.inodesTotal === 0) out.push(finding('disk', 'inodes', 'info', 'Free inodes', 'not limited on this filesystem'))
  else {
    const values = {free: {value: disk.inodesFree ?? null, unit: 'inodes'}, total: {value: disk.inodesTotal, unit: 'inodes'}}
    const free = disk.inodesFree ?? 0
    if (free === 0) out.push(finding('disk', 'inodes', 'fail', 'Free inodes', 'none left: no file can be created', values, {fix: 'delete small files (caches, logs) on that filesystem'}))
    else if (free < 10_000) out.push(finding('disk', 'inodes', 'warn', 'Free inodes', `only ${free} left`, values, {fix: 'delete small files on that filesystem; a model repo needs a few dozen'}))
    else out.push(finding('disk', 'inodes', 'pass', 'Free inodes', `${free.toLocaleString('en')} free`, values))
  }
  return out
}

// ---------------------------------------------------------------- memory

/** What RAM and VRAM must hold, and, where the pull writes more (a repo's other formats and variants), that it is only part of it. */
function loadedWords(f: DoctorFacts): string {
  const loads = f.loads ?? f.size ?? 0
  // Only where the two read apart: a repo's few KB of configs made "6.0 MiB loaded, of 6.0 MiB pulled".
  return f.size !== undefined && formatBytes(loads) !== formatBytes(f.size) ? `${formatBytes(loads)} loaded, of ${formatBytes(f.size)} pulled` : formatBytes(loads)
}

export function memoryChecks(f: DoctorFacts): Finding[] {
  const {memory: m} = f
  const size = f.loads ?? f.size
  const out: Finding[] = []
  if (m.totalBytes === undefined) out.push(finding('memory', 'ram', 'unknown', 'RAM', 'unknown (no /proc/meminfo)'))
  else {
    const values = {total: bytes(m.totalBytes), available: bytes(m.availableBytes), model: bytes(size)}
    const summary = `${formatBytes(m.totalBytes)} total, ${formatBytes(m.availableBytes ?? 0)} available`
    const mmap = "load it memory-mapped (Ollama's use_mmap, the default; llama.cpp without --no-mmap; safetensors are mmapped by default)"
    if (size === undefined) out.push(finding('memory', 'ram', 'info', 'RAM', `${summary} (model size unknown)`, values))
    else if (size > m.totalBytes) {
      out.push(finding('memory', 'ram', 'warn', 'RAM', `${summary}: the model (${loadedWords(f)}) is larger than RAM`, values, {fix: `${mmap}; pages will be read from disk as needed, so keep it on fast storage`}))
    } else if (size > m.totalBytes / 2) {
      out.push(finding('memory', 'ram', 'warn', 'RAM', `${summary}: the model (${loadedWords(f)}) is more than half of RAM`, values, {fix: `${mmap}: loaders that copy it into allocated memory fail with "unable to allocate CPU buffer"`}))
    } else out.push(finding('memory', 'ram', 'pass', 'RAM', `${summary}, model ${loadedWords(f)}`, values))
  }
  if (m.swapTotalBytes !== undefined) {
    const values = {total: bytes(m.swapTotalBytes), free: bytes(m.swapFreeBytes)}
    out.push(finding('memory', 'swap', 'info', 'Swap', m.swapTotalBytes === 0 ? 'none' : `${formatBytes(m.swapTotalBytes)}, ${formatBytes(m.swapFreeBytes ?? 0)} free`, values))
  }
  return out
}

// ---------------------------------------------------------------- GPU

export function gpuChecks(f: DoctorFacts): Finding[] {
  const {gpus} = f
  const size = f.loads ?? f.size
  if (gpus.gpus.length === 0) {
    return [finding('gpu', 'devices', 'info', 'GPUs', `none found (${gpus.notes.join('; ') || 'no driver'}): inference would run on the CPU`)]
  }
  const out = gpus.gpus.map((g) =>
    finding(
      'gpu',
      `${g.vendor}${g.index}`,
      'info',
      `GPU ${g.index}`,
      `${g.name}, ${formatBytes(g.memoryTotalBytes)}${g.unified ? ' of unified memory (shared with the CPU)' : ''}${g.memoryFreeBytes !== undefined ? ` (${formatBytes(g.memoryFreeBytes)} free)` : ''}${g.driver ? `, driver ${g.driver}` : ''}`,
      {total: bytes(g.memoryTotalBytes), free: bytes(g.memoryFreeBytes), driver: {value: g.driver ?? null}, name: {value: g.name}, unified: {value: Boolean(g.unified)}},
    ),
  )
  const total = gpus.gpus.reduce((s, g) => s + g.memoryTotalBytes, 0)
  const free = gpus.gpus.reduce((s, g) => s + (g.memoryFreeBytes ?? g.memoryTotalBytes), 0)
  const values = {total: bytes(total), free: bytes(free), model: bytes(size)}
  const unified = gpus.gpus.every((g) => g.unified)
  const summary = `${formatBytes(total)} of ${unified ? 'unified memory' : 'VRAM'} on ${gpus.gpus.length} GPU${gpus.gpus.length > 1 ? 's' : ''}`
  if (size === undefined) out.push(finding('gpu', 'vram', 'info', 'VRAM', `${summary} (model size unknown)`, values))
  else if (size > total) {
    const off = size - total
    out.push(
      finding('gpu', 'vram', 'warn', 'VRAM', `${summary}: the model (${loadedWords(f)}) does not fit; about ${pct(off, size)} of its layers would run on the CPU`, values, {
        fix: 'use a smaller quantization or more GPUs; with offloading (llama.cpp -ngl, Ollama num_gpu) expect CPU speed for the offloaded part',
      }),
    )
  } else if (size > free) {
    out.push(finding('gpu', 'vram', 'warn', 'VRAM', `${summary}: the model (${loadedWords(f)}) fits, but only ${formatBytes(free)} is free now`, values, {fix: 'stop what holds GPU memory (nvidia-smi lists the processes)'}))
  } else out.push(finding('gpu', 'vram', 'pass', 'VRAM', `${summary}, model ${loadedWords(f)} fits (plus room for the KV cache: ${formatBytes(free - size)})`, values))
  return out
}

// ---------------------------------------------------------------- network

export function networkChecks(f: DoctorFacts): Finding[] {
  const n = f.network
  const out: Finding[] = []
  const bbrThere = n.availableCongestion?.includes('bbr') || n.bbrModule
  if (!n.congestionControl) out.push(finding('network', 'congestion', 'unknown', 'Congestion control', 'unknown (cannot read /proc/sys/net/ipv4)'))
  else {
    const values = {inUse: {value: n.congestionControl}, available: {value: (n.availableCongestion ?? []).join(' ')}}
    if (n.congestionControl === 'bbr') out.push(finding('network', 'congestion', 'pass', 'Congestion control', 'bbr', values))
    else if (bbrThere) {
      out.push(
        finding('network', 'congestion', 'warn', 'Congestion control', `${n.congestionControl}; bbr is available`, values, {
          fix: 'sudo mtune tune --apply (or: sudo sysctl -w net.ipv4.tcp_congestion_control=bbr); BBR helps most on long or lossy paths',
        }),
      )
    } else out.push(finding('network', 'congestion', 'info', 'Congestion control', `${n.congestionControl}; bbr is not available in this kernel`, values))
  }

  if (n.defaultQdisc) {
    const values = {defaultQdisc: {value: n.defaultQdisc}}
    if (n.defaultQdisc === 'fq') out.push(finding('network', 'qdisc', 'pass', 'Default qdisc', 'fq', values))
    else if (n.fqModule === false) out.push(finding('network', 'qdisc', 'info', 'Default qdisc', `${n.defaultQdisc}; fq is not available in this kernel (no sch_fq module)`, values))
    else {
      const dev = n.iface?.name ?? 'IFACE'
      // A multi-queue NIC keeps its mq root: each queue gets fq, never one fq for all of them.
      const byHand =
        (n.iface?.txQueues ?? 1) > 1
          ? `sudo sysctl -w net.core.default_qdisc=fq, then for each of its ${n.iface!.txQueues} queues: sudo tc qdisc replace dev ${dev} parent :N fq`
          : `sudo sysctl -w net.core.default_qdisc=fq && sudo tc qdisc replace dev ${dev} root fq`
      out.push(finding('network', 'qdisc', 'warn', 'Default qdisc', `${n.defaultQdisc} (fq paces BBR best)`, values, {fix: `sudo mtune tune --apply (or: ${byHand})`}))
    }
  } else out.push(finding('network', 'qdisc', 'unknown', 'Default qdisc', 'unknown'))

  out.push(bufferCheck(f))

  if (n.windowScaling === undefined) out.push(finding('network', 'window_scaling', 'unknown', 'Window scaling', 'unknown'))
  else if (n.windowScaling === 1) out.push(finding('network', 'window_scaling', 'pass', 'Window scaling', 'on'))
  else {
    out.push(finding('network', 'window_scaling', 'fail', 'Window scaling', 'off: every connection is held to a 64 KiB window', {windowScaling: {value: n.windowScaling}}, {fix: 'sudo sysctl -w net.ipv4.tcp_window_scaling=1'}))
  }

  if (n.slowStartAfterIdle === undefined) out.push(finding('network', 'slow_start_after_idle', 'unknown', 'Slow start after idle', 'unknown'))
  else if (n.slowStartAfterIdle === 0) out.push(finding('network', 'slow_start_after_idle', 'pass', 'Slow start after idle', 'off'))
  else {
    out.push(
      finding('network', 'slow_start_after_idle', 'warn', 'Slow start after idle', 'on: a connection that pauses starts over from a small window', {value: {value: n.slowStartAfterIdle}}, {
        fix: 'sudo mtune tune --apply (or: sudo sysctl -w net.ipv4.tcp_slow_start_after_idle=0)',
      }),
    )
  }

  if (n.iface) {
    const i = n.iface
    out.push(
      finding('network', 'interface', 'info', 'Interface', `${i.name}${i.speedMbps ? `, ${i.speedMbps >= 1000 ? `${i.speedMbps / 1000} Gbit/s` : `${i.speedMbps} Mbit/s`}` : ', speed unknown'}${i.mtu ? `, MTU ${i.mtu}` : ''}`, {
        name: {value: i.name},
        speed: {value: i.speedMbps ?? null, unit: 'Mbit/s'},
        mtu: {value: i.mtu ?? null, unit: 'bytes'},
      }),
    )
  } else out.push(finding('network', 'interface', 'unknown', 'Interface', 'no default route found'))
  return out
}

/** rmem_max and tcp_rmem's maximum against twice the bandwidth-delay product (fasterdata). */
function bufferCheck(f: DoctorFacts): Finding {
  const n = f.network
  const {bandwidthBps, rttMs, source} = f.link
  if (n.rmemMax === undefined || !n.tcpRmem) return finding('network', 'buffers', 'unknown', 'TCP buffers', 'unknown (cannot read net.core.rmem_max / net.ipv4.tcp_rmem)')
  const have = `rmem_max ${formatBytes(n.rmemMax)}, tcp_rmem max ${formatBytes(n.tcpRmem[2])}`
  const values: Record<string, Value> = {
    rmemMax: bytes(n.rmemMax),
    tcpRmemMax: bytes(n.tcpRmem[2]),
    wmemMax: bytes(n.wmemMax),
    tcpWmemMax: bytes(n.tcpWmem?.[2]),
    linkSource: {value: source},
    rttSource: {value: f.link.rttSource ?? null},
  }
  if (!bandwidthBps || !rttMs) {
    return finding('network', 'buffers', 'info', 'TCP buffers', `${have}; bandwidth${rttMs ? '' : ' and RTT'} unknown`, values, {fix: `give --bandwidth${rttMs ? '' : ' and --rtt'}, or run mtune bench, to check them against the path`})
  }
  const bdp = bdpBytes(bandwidthBps, rttMs)
  const need = 2 * bdp
  values.bandwidth = {value: bandwidthBps, unit: 'bytes/s'}
  values.rtt = {value: rttMs, unit: 'ms'}
  values.bdp = bytes(bdp)
  values.recommended = bytes(need)
  const path = `${formatBitRate(bandwidthBps)} x ${rttMs} ms = ${formatBytes(bdp)} BDP (${linkOrigin(f.link)})`
  const low = Math.min(n.rmemMax, n.tcpRmem[2])
  if (low >= need) return finding('network', 'buffers', 'pass', 'TCP buffers', `${have} >= 2 x BDP; ${path}`, values)
  return finding('network', 'buffers', 'warn', 'TCP buffers', `${have} < ${formatBytes(need)} (2 x BDP); ${path}`, values, {
    fix: `sudo mtune tune --apply${linkFlags(f.link)} (raises net.core.rmem_max and net.ipv4.tcp_rmem to ${need} bytes)`,
    details: [`one connection can carry at most window / RTT = ${formatRate((low * 1000) / rttMs)} on this path`],
  })
}

// ---------------------------------------------------------------- disk I/O

export const RECOMMENDED_SCHEDULER: Record<string, string[]> = {nvme: ['none'], ssd: ['mq-deadline'], hdd: ['mq-deadline'], virtual: ['none', 'mq-deadline'], unknown: ['none', 'mq-deadline']}
export const RECOMMENDED_READ_AHEAD_KB = 4096

export function ioChecks(f: DoctorFacts): Finding[] {
  const b = f.block
  if (b.none) return [finding('io', 'device', 'info', 'Block device', `none: ${b.none}; nothing to tune here`)]
  if (b.disks.length === 0) return [finding('io', 'device', 'unknown', 'Block device', `unknown (${b.chain.join(' -> ')})`)]
  const out: Finding[] = []
  for (const d of b.disks) {
    const chain = b.chain.length > 1 ? ` (${b.chain.join(' -> ')})` : ''
    const want = RECOMMENDED_SCHEDULER[d.type]
    const values = {device: {value: d.name}, type: {value: d.type}, scheduler: {value: d.scheduler ?? null}, recommended: {value: want.join(' or ')}}
    if (!d.scheduler) out.push(finding('io', `${d.name}.scheduler`, 'unknown', `${d.name} scheduler`, `${d.type}${chain}; scheduler unknown`, values))
    else if (want.includes(d.scheduler)) out.push(finding('io', `${d.name}.scheduler`, 'pass', `${d.name} scheduler`, `${d.type}${chain}, ${d.scheduler}`, values))
    else {
      const target = want.find((w) => d.schedulers?.includes(w)) ?? want[0]
      out.push(
        finding('io', `${d.name}.scheduler`, 'warn', `${d.name} scheduler`, `${d.type}${chain}, ${d.scheduler}; ${want.join(' or ')} is recommended for ${d.type === 'nvme' ? 'NVMe' : d.type.toUpperCase()}`, values, {
          fix: `sudo mtune tune --apply (or: echo ${target} | sudo tee /sys/block/${d.name}/queue/scheduler)`,
        }),
      )
    }
    const ra = d.readAheadKb
    const raValues = {readAhead: {value: ra ?? null, unit: 'KiB'}, recommended: {value: RECOMMENDED_READ_AHEAD_KB, unit: 'KiB'}}
    if (ra === undefined) out.push(finding('io', `${d.name}.read_ahead`, 'unknown', `${d.name} read-ahead`, 'unknown', raValues))
    else if (ra >= RECOMMENDED_READ_AHEAD_KB) out.push(finding('io', `${d.name}.read_ahead`, 'pass', `${d.name} read-ahead`, `${ra} KiB`, raValues))
    else {
      out.push(
        finding('io', `${d.name}.read_ahead`, 'warn', `${d.name} read-ahead`, `${ra} KiB; >= ${RECOMMENDED_READ_AHEAD_KB} KiB reads a model in faster`, raValues, {
          fix: `sudo mtune tune --apply (or: echo ${RECOMMENDED_READ_AHEAD_KB} | sudo tee /sys/block/${d.name}/queue/read_ahead_kb)`,
        }),
      )
    }
  }
  return out
}

// ---------------------------------------------------------------- environment


export function envChecks(f: DoctorFacts): Finding[] {
  const e = f.env
  const out: Finding[] = []
  const p = e.proxies
  const names = Object.keys(p).filter((k) => !/no_proxy/i.test(k))
  if (names.length === 0) out.push(finding('env', 'proxy', 'pass', 'Proxy', 'none set: direct connections'))
  else {
    const values = Object.fromEntries(Object.entries(p).map(([k, v]) => [k, {value: hideCredentials(v)}]))
    const shown = names.map((k) => `${k}=${hideCredentials(p[k])}`).join(', ')
    const pairs = [
      ['HTTPS_PROXY', 'https_proxy'],
      ['HTTP_PROXY', 'http_proxy'],
      ['ALL_PROXY', 'all_proxy'],
      ['NO_PROXY', 'no_proxy'],
    ]
    const clash = pairs.find(([a, b]) => p[a] !== undefined && p[b] !== undefined && p[a] !== p[b])
    const noProxy = p.NO_PROXY ?? p.no_proxy
    const used = proxyConfig(p)
    const problem = proxyProblem(p)
    if (problem) {
      out.push(finding('env', 'proxy', 'fail', 'Proxy', problem, values, {fix: 'export HTTPS_PROXY=http://HOST:PORT HTTP_PROXY=http://HOST:PORT (or socks5://HOST:PORT): until then every mtune download stops at this line'}))
    } else if (clash) {
      out.push(finding('env', 'proxy', 'warn', 'Proxy', `${clash[0]} and ${clash[1]} differ`, values, {fix: `set both to the same value (tools disagree on which one they read)`}))
    } else if (!noProxy || (proxyFor('https://localhost/', used) && proxyFor('https://127.0.0.1/', used))) {
      out.push(finding('env', 'proxy', 'warn', 'Proxy', `${shown}; NO_PROXY ${noProxy ? 'lacks localhost' : 'is not set'}`, values, {fix: 'export NO_PROXY=localhost,127.0.0.1,<your internal mirrors>: local and internal traffic should not go through the proxy'}))
    } else out.push(finding('env', 'proxy', 'pass', 'Proxy', `${shown}; NO_PROXY=${noProxy}`, values))
    for (const probe of f.proxies ?? []) out.push(proxyReachFinding(probe))
  }

  const hf = e.hf
  const shownHf = Object.entries(hf).map(([k, v]) => `${k}=${k === 'HF_TOKEN' ? '(set)' : v}`)
  if (hfHubOffline(hf)) out.push(finding('env', 'huggingface', 'warn', 'Hugging Face', `HF_HUB_OFFLINE=${hf.HF_HUB_OFFLINE}: Hugging Face tools will not download`, {}, {fix: 'unset HF_HUB_OFFLINE to pull with them (mtune pull ignores it; mtune verify then checks against the disk alone)'}))
  else out.push(finding('env', 'huggingface', 'info', 'Hugging Face', shownHf.length ? shownHf.join(', ') : 'defaults (huggingface.co, ~/.cache/huggingface)'))

  const o = e.ollamaModels
  if (o) {
    const values = {path: {value: o.path}, exists: {value: o.exists}, writableByService: {value: o.writableByService ?? null}}
    if (!o.exists) out.push(finding('env', 'ollama', 'warn', 'Ollama store', `OLLAMA_MODELS=${o.path} does not exist`, values, {fix: `mkdir -p ${o.path}${o.serviceUser ? ` && sudo chown ollama:ollama ${o.path}` : ''}`}))
    else if (o.writableByService === false) {
      out.push(finding('env', 'ollama', 'warn', 'Ollama store', `OLLAMA_MODELS=${o.path} is not writable by the ollama service user`, values, {fix: `sudo chown -R ollama:ollama ${o.path}`}))
    } else out.push(finding('env', 'ollama', 'pass', 'Ollama store', `OLLAMA_MODELS=${o.path}${o.writableByUs ? '' : ' (read-only for you)'}`, values))
  }

  out.push(trustFinding(e.caBundle))
  if (e.netrc) out.push(netrcFinding(e.netrc))
  if (f.cache) out.push(cacheFinding(f.cache, f.cache.invalid ? undefined : proxyFor(f.cache.url, proxyConfig(p))))

  if (e.openFilesSoft === undefined) out.push(finding('env', 'open_files', 'unknown', 'Open files limit', 'unknown'))
  else if (e.openFilesSoft < 1024) {
    out.push(finding('env', 'open_files', 'warn', 'Open files limit', `${e.openFilesSoft}`, {limit: {value: e.openFilesSoft}}, {fix: 'ulimit -n 65536 (or LimitNOFILE= in the service unit)'}))
  } else out.push(finding('env', 'open_files', 'pass', 'Open files limit', Number.isFinite(e.openFilesSoft) ? `${e.openFilesSoft}` : 'unlimited', {limit: {value: Number.isFinite(e.openFilesSoft) ? e.openFilesSoft : null}}))
  return out
}

/** A URL's host as NO_PROXY names it (an IPv6 address in brackets, as undici compares it). */
const hostOf = (url: string) => new URL(url).hostname

/** A proxy that does not take connections stops every download through it: said before a pull. */
function proxyReachFinding(p: ProxyProbe): Finding {
  const values = {proxy: {value: p.proxy}, answers: {value: p.answers}, ms: {value: p.ms ?? null, unit: 'ms'}}
  if (p.answers) return finding('env', 'proxy_reachable', 'pass', 'Proxy reachable', `${p.proxy} takes connections (${(p.ms ?? 0).toFixed(0)} ms)`, values)
  return finding('env', 'proxy_reachable', 'fail', 'Proxy reachable', `${p.proxy} does not take connections (${p.error ?? 'no answer'})`, values, {
    fix: 'correct the host and port in HTTPS_PROXY/HTTP_PROXY/ALL_PROXY, or unset them where this machine reaches the servers directly',
  })
}

/** The logins pull and bench take from ~/.netrc: said, and a file other users can read is a leak. */
function netrcFinding(n: NonNullable<DoctorFacts['env']['netrc']>): Finding {
  const values = {path: {value: n.path}, logins: {value: n.logins}}
  const what = `${n.path}: ${n.logins} login${n.logins === 1 ? '' : 's'}, sent to ${n.logins === 1 ? 'its host' : 'their hosts'} for URLs without their own`
  if (n.openToOthers) return finding('env', 'netrc', 'warn', 'Credentials', `${what}; other users can read it`, values, {fix: `chmod 600 ${n.path}`})
  return finding('env', 'netrc', 'pass', 'Credentials', what, values)
}

/** Which CAs https is verified against: Node's, and the bundle added to them (bin/run.js: the system's). */
function trustFinding(ca: DoctorFacts['env']['caBundle']): Finding {
  const values = {NODE_EXTRA_CA_CERTS: {value: ca?.path ?? null}}
  if (!ca) {
    return finding('env', 'tls', 'info', 'TLS trust', "Node's public CAs only (no system CA bundle found)", values, {
      fix: 'a private CA (a mirror\'s, an HTTPS-inspecting proxy\'s): export NODE_EXTRA_CA_CERTS=/path/to/ca.pem',
    })
  }
  if (!ca.readable) {
    return finding('env', 'tls', 'warn', 'TLS trust', `NODE_EXTRA_CA_CERTS=${ca.path} cannot be read: only Node's public CAs are trusted`, values, {
      fix: 'point NODE_EXTRA_CA_CERTS at a readable PEM file, or unset it to use the system\'s CA bundle',
    })
  }
  return finding('env', 'tls', 'pass', 'TLS trust', `Node's public CAs and ${ca.path}`, values)
}

/**
 * MTUNE_CACHE (or an HF_ENDPOINT that is one): does the fleet cache this machine is pointed at
 * answer, and directly? A rack cache reached through the site's proxy (not in NO_PROXY) sends
 * the rack's traffic out and back, and its range requests go through undici rather than mtune's
 * own client (dispatcher.ts), which takes only direct connections.
 */
function cacheFinding(c: CacheProbe, proxyUrl: string | undefined): Finding {
  const proxy = proxyUrl && new URL(proxyUrl).host
  const values = {
    url: {value: c.url},
    answers: {value: c.answers},
    mtuneCache: {value: c.mtune},
    ms: {value: c.ms === undefined ? null : Math.round(c.ms), unit: 'ms'},
    proxy: {value: proxy || null},
  }
  const where = `${c.from}=${c.url}`
  if (c.invalid) {
    const who = c.from === 'MTUNE_CACHE' ? 'every mtune pull refuses it' : 'mtune and the Hugging Face tools refuse it'
    return finding('env', 'cache', 'fail', 'Cache', `${where} cannot be used: ${who}`, values, {fix: `${c.invalid.replace(/^invalid [^"]*"[^"]*": /, '')} (or unset ${c.from})`})
  }
  if (proxy && c.answers) {
    return finding('env', 'cache', 'warn', 'Cache', `${where}${c.mtune ? ': an mtune cache' : ''} answers, but through the proxy ${proxy}`, values, {
      fix: `export NO_PROXY=\${NO_PROXY:+\$NO_PROXY,}${hostOf(c.url)}: the rack's traffic should not leave through the proxy`,
    })
  }
  if (c.from === 'MTUNE_CACHE') {
    const origins = Object.values(c.origins ?? {})
    const plain = origins.length ? `; URLs under ${origins.join(', ')} are pulled through it too` : ''
    if (c.mtune) return finding('env', 'cache', 'pass', 'Cache', `${where}: an mtune cache, answering in ${Math.round(c.ms ?? 0)} ms${plain}`, values)
    if (c.answers) return finding('env', 'cache', 'warn', 'Cache', `${where} answers, but is not an mtune cache`, values, {fix: 'set MTUNE_CACHE to the URL mtune cache serve printed on the cache host'})
    const start = 'start it on the cache host (mtune cache serve --dir DIR --listen HOST:PORT), check the firewall, or unset MTUNE_CACHE'
    if (proxy) {
      return finding('env', 'cache', 'warn', 'Cache', `${where} does not answer through the proxy ${proxy}: pulls will fall back to the origin`, values, {
        fix: `export NO_PROXY=\${NO_PROXY:+\$NO_PROXY,}${hostOf(c.url)}: the rack's traffic should not leave through the proxy; if it still does not answer, ${start}`,
      })
    }
    return finding('env', 'cache', 'warn', 'Cache', `${where} does not answer: pulls will fall back to the origin`, values, {fix: start})
  }
  if (c.mtune) return finding('env', 'cache', 'pass', 'Cache', `${where}: an mtune cache, answering in ${Math.round(c.ms ?? 0)} ms (Hugging Face tools use it)`, values)
  if (c.answers) return finding('env', 'cache', 'info', 'Cache', `${where}: a hub endpoint, answering; no mtune cache set (MTUNE_CACHE)`, values)
  return finding('env', 'cache', 'warn', 'Cache', `${where} does not answer: Hugging Face tools cannot download`, values, {fix: 'start the cache or mirror it names, or unset HF_ENDPOINT'})
}
