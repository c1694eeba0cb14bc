import {gunzipSync} from 'node:zlib'
import {accessSync, constants, readFileSync, statSync} from 'node:fs'
import {dirname, resolve} from 'node:path'
import {nearestExisting} from '../fs-dirs.js'
import {netrcPath, parseNetrc} from '../net/netrc.js'
import type {SystemReader} from './reader.js'

const num = (text: string | undefined): number | undefined => {
  const n = text === undefined ? Number.NaN : Number(text.trim())
  return Number.isFinite(n) ? n : undefined
}

// ---------------------------------------------------------------- memory

export interface MemoryFacts {
  totalBytes?: number
  availableBytes?: number
  swapTotalBytes?: number
  swapFreeBytes?: number
}

export function readMemory(r: SystemReader): MemoryFacts {
  const text = r.read('/proc/meminfo')
  if (!text) return {}
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)
    return m ? Number(m[1]) * 1024 : undefined
  }
  return {totalBytes: kb('MemTotal'), availableBytes: kb('MemAvailable'), swapTotalBytes: kb('SwapTotal'), swapFreeBytes: kb('SwapFree')}
}

// ---------------------------------------------------------------- mounts and disk space

export interface MountFacts {
  mountPoint: string
  fsType: string
  source: string
  majorMinor: string
}

/** Octal escapes in mountinfo (\040 for a space). */
const unescape = (s: string) => s.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))

export function parseMountinfo(text: string): MountFacts[] {
  const mounts: MountFacts[] = []
  for (const line of text.split('\n')) {
    const [left, right] = line.split(' - ')
    if (!left || !right) continue
    const f = left.split(' ')
    const g = right.split(' ')
    if (f.length < 5 || g.length < 2) continue
    mounts.push({majorMinor: f[2], mountPoint: unescape(f[4]), fsType: g[0], source: unescape(g[1])})
  }
  return mounts
}

/** The mount holding `path`: the longest mount point that contains it (the last one wins on ties). */
export function mountFor(mounts: MountFacts[], path: string): MountFacts | undefined {
  let best: MountFacts | undefined
  for (const m of mounts) {
    const mp = m.mountPoint
    const inside = mp === '/' || path === mp || path.startsWith(mp.endsWith('/') ? mp : `${mp}/`)
    if (inside && (!best || mp.length >= best.mountPoint.length)) best = m
  }
  return best
}

export interface DiskFacts {
  path: string
  /** The directory that exists and would receive the files. */
  directory: string
  /** A file at `path`, or above it, where a directory would have to be (a file given as --path). */
  fileInTheWay?: string
  freeBytes?: number
  totalBytes?: number
  inodesFree?: number
  inodesTotal?: number
  writable: boolean
  mount?: MountFacts
}

export function readDisk(r: SystemReader, path: string): DiskFacts {
  // Where the files would be created: the nearest directory that exists (above a file in the way).
  const {found = {path: '/', directory: true}} = nearestExisting(path)
  const fileInTheWay = found.directory ? undefined : found.path
  const directory = found.directory ? found.path : dirname(found.path)
  const fs = r.statfs(directory)
  const mountinfo = r.read('/proc/self/mountinfo')
  return {
    path: resolve(path),
    directory,
    ...(fileInTheWay ? {fileInTheWay} : {}),
    freeBytes: fs ? fs.bavail * fs.bsize : undefined,
    totalBytes: fs ? fs.blocks * fs.bsize : undefined,
    inodesFree: fs?.ffree,
    inodesTotal: fs?.files,
    writable: r.writable(directory),
    mount: mountinfo ? mountFor(parseMountinfo(mountinfo), resolve(path)) : undefined,
  }
}

// ---------------------------------------------------------------- block devices

export type DiskType = 'nvme' | 'ssd' | 'hdd' | 'virtual' | 'unknown'

export interface BlockDevice {
  name: string
  type: DiskType
  scheduler?: string
  schedulers?: string[]
  readAheadKb?: number
  rotational?: boolean
}

export interface BlockFacts {
  /** Why there is no device to look at (overlay, tmpfs, NFS, unreadable /sys). */
  none?: string
  /** From the mount's device down to the disks, e.g. dm-0 -> sda2 -> sda. */
  chain: string[]
  disks: BlockDevice[]
}

const NO_DEVICE_FS = new Set(['overlay', 'tmpfs', 'nfs', 'nfs4', 'cifs', 'smb3', 'fuse', '9p', 'virtiofs', 'ramfs', 'squashfs', 'zfs'])

/**
 * mount -> major:minor -> /sys/dev/block/MAJ:MIN -> the disk that owns queue/, through
 * partitions (a `partition` file: the parent directory is the disk) and dm/md (slaves/).
 */
export function readBlock(r: SystemReader, mount: MountFacts | undefined): BlockFacts {
  if (!mount) return {none: 'the mount is unknown (no /proc/self/mountinfo)', chain: [], disks: []}
  let start = `/sys/dev/block/${mount.majorMinor}`
  if (mount.majorMinor.startsWith('0:')) {
    // btrfs and friends have an anonymous device: its mount source names the real one.
    const dev = /^\/dev\/([^/]+)$/.exec(mount.source)?.[1]
    if (!dev || !r.exists(`/sys/class/block/${dev}`)) {
      const why = NO_DEVICE_FS.has(mount.fsType) || mount.fsType.startsWith('fuse') ? `${mount.fsType} filesystem` : `${mount.fsType} has no block device`
      return {none: why, chain: [], disks: []}
    }
    start = `/sys/class/block/${dev}`
  }
  const chain: string[] = []
  const disks: BlockDevice[] = []
  const visit = (sysPath: string, depth: number) => {
    const real = r.resolve(sysPath)
    if (!real || depth > 8) return
    const name = real.split('/').pop()!
    chain.push(name)
    if (r.exists(`${real}/partition`)) {
      visit(dirname(real), depth + 1)
      return
    }
    const slaves = r.list(`${real}/slaves`)
    if (slaves && slaves.length > 0) {
      for (const s of slaves) visit(`${real}/slaves/${s}`, depth + 1)
      return
    }
    if (!disks.some((d) => d.name === name)) disks.push(describeDisk(r, real, name))
  }
  visit(start, 0)
  if (chain.length === 0) return {none: `/sys has no entry for ${mount.source} (${mount.majorMinor}), as in many containers`, chain, disks}
  return {chain, disks}
}

function describeDisk(r: SystemReader, sysPath: string, name: string): BlockDevice {
  const sched = r.read(`${sysPath}/queue/scheduler`)?.trim()
  const rotational = r.read(`${sysPath}/queue/rotational`)?.trim()
  const active = sched ? /\[([^\]]+)\]/.exec(sched)?.[1] ?? sched.split(/\s+/)[0] : undefined
  let type: DiskType = 'unknown'
  if (name.startsWith('nvme')) type = 'nvme'
  else if (/^(vd|xvd)/.test(name)) type = 'virtual'
  else if (rotational === '1') type = 'hdd'
  else if (rotational === '0') type = 'ssd'
  return {
    name,
    type,
    scheduler: active,
    schedulers: sched?.replace(/[[\]]/g, '').split(/\s+/).filter(Boolean),
    readAheadKb: num(r.read(`${sysPath}/queue/read_ahead_kb`)),
    rotational: rotational === undefined ? undefined : rotational === '1',
  }
}

// ---------------------------------------------------------------- network stack

export interface NetworkFacts {
  congestionControl?: string
  availableCongestion?: string[]
  /** tcp_bbr exists as a module (or built in) for the running kernel. */
  bbrModule?: boolean
  /** sch_fq exists likewise; undefined when the kernel's modules cannot be seen. */
  fqModule?: boolean
  defaultQdisc?: string
  rmemMax?: number
  wmemMax?: number
  tcpRmem?: number[]
  tcpWmem?: number[]
  windowScaling?: number
  slowStartAfterIdle?: number
  mtuProbing?: number
  netdevMaxBacklog?: number
  /** txQueues > 1: a multi-queue NIC (root qdisc mq, one child per queue). */
  iface?: {name: string; speedMbps?: number; mtu?: number; txQueues?: number}
}

export function readNetwork(r: SystemReader): NetworkFacts {
  const sys = (key: string) => r.read(`/proc/sys/${key.replace(/\./g, '/')}`)?.trim()
  const triple = (key: string) => sys(key)?.split(/\s+/).map(Number)
  const release = r.read('/proc/sys/kernel/osrelease')?.trim()
  const moduleThere = (dirInTree: string, name: string): boolean | undefined => {
    if (!release) return undefined
    const dir = `/lib/modules/${release}`
    if (!r.exists(dir) && !r.read('/proc/modules')) return undefined
    return (
      Boolean(r.list(`${dir}/kernel/${dirInTree}`)?.some((f) => f.startsWith(`${name}.ko`))) ||
      Boolean(r.read(`${dir}/modules.builtin`)?.includes(`${name}.ko`)) ||
      Boolean(r.read('/proc/modules')?.split('\n').some((l) => l.startsWith(`${name} `)))
    )
  }
  // The kernel's build configuration, where it is published, is the last word: a feature that is
  // "not set" cannot be loaded (as on kernels built without sch_fq, or without module support).
  const config = kernelConfig(r, release)
  const built = (option: string, dirInTree: string, name: string): boolean | undefined => {
    const v = config?.get(option)
    if (config && v === undefined) return false
    if (v === 'y') return true
    if (v === 'm' && config?.get('CONFIG_MODULES') !== 'y') return false
    return moduleThere(dirInTree, name) ?? (v === 'm' ? true : undefined)
  }
  const bbrModule = built('CONFIG_TCP_CONG_BBR', 'net/ipv4', 'tcp_bbr')
  const fqModule = built('CONFIG_NET_SCH_FQ', 'net/sched', 'sch_fq')
  return {
    congestionControl: sys('net.ipv4.tcp_congestion_control'),
    availableCongestion: sys('net.ipv4.tcp_available_congestion_control')?.split(/\s+/),
    bbrModule,
    fqModule,
    defaultQdisc: sys('net.core.default_qdisc'),
    rmemMax: num(sys('net.core.rmem_max')),
    wmemMax: num(sys('net.core.wmem_max')),
    tcpRmem: triple('net.ipv4.tcp_rmem'),
    tcpWmem: triple('net.ipv4.tcp_wmem'),
    windowScaling: num(sys('net.ipv4.tcp_window_scaling')),
    slowStartAfterIdle: num(sys('net.ipv4.tcp_slow_start_after_idle')),
    mtuProbing: num(sys('net.ipv4.tcp_mtu_probing')),
    netdevMaxBacklog: num(sys('net.core.netdev_max_backlog')),
    iface: defaultInterface(r),
  }
}

/** CONFIG_X -> y/m from /boot/config-RELEASE or /proc/config.gz; undefined where neither is readable. */
export function kernelConfig(r: SystemReader, release: string | undefined): Map<string, string> | undefined {
  let text = release ? r.read(`/boot/config-${release}`) : undefined
  if (text === undefined) {
    const gz = r.readBytes('/proc/config.gz')
    try {
      text = gz ? gunzipSync(gz).toString('utf8') : undefined
    } catch {
      text = undefined
    }
  }
  if (text === undefined || !/^CONFIG_/m.test(text)) return undefined
  const out = new Map<string, string>()
  for (const m of text.matchAll(/^(CONFIG_\w+)=(\S+)$/gm)) out.set(m[1], m[2])
  return out
}

/** The interface of the default route, from /proc/net/route. */
function defaultInterface(r: SystemReader): NetworkFacts['iface'] {
  const route = r.read('/proc/net/route')
  const line = route?.split('\n').find((l) => l.split(/\s+/)[1] === '00000000')
  const name = line?.split(/\s+/)[0]
  if (!name) return undefined
  const speed = num(r.read(`/sys/class/net/${name}/speed`))
  const queues = r.list(`/sys/class/net/${name}/queues`)?.filter((q) => q.startsWith('tx-')).length
  return {name, speedMbps: speed !== undefined && speed > 0 ? speed : undefined, mtu: num(r.read(`/sys/class/net/${name}/mtu`)), txQueues: queues || undefined}
}

// ---------------------------------------------------------------- GPUs

export interface Gpu {
  vendor: 'nvidia' | 'amd' | 'intel' | 'apple' | 'other'
  /** Memory shared with the CPU (Apple silicon, integrated GPUs): the model must fit in RAM. */
  unified?: boolean
  index: number
  name: string
  memoryTotalBytes: number
  memoryFreeBytes?: number
  driver?: string
}

export interface GpuFacts {
  gpus: Gpu[]
  /** Why a vendor's tool said nothing: not installed, timed out, failed. */
  notes: string[]
}

const MiB = 1024 * 1024

export async function readGpus(r: SystemReader): Promise<GpuFacts> {
  const notes: string[] = []
  const gpus: Gpu[] = []
  const nv = await r.run('nvidia-smi', ['--query-gpu=index,name,memory.total,memory.free,driver_version', '--format=csv,noheader,nounits'], 3_000)
  if (!nv) notes.push('nvidia-smi not found or timed out: no NVIDIA driver')
  else if (nv.exitCode !== 0) notes.push(`nvidia-smi failed (exit ${nv.exitCode}): ${nv.stdout.split('\n')[0] ?? ''}`.trim())
  else {
    for (const line of nv.stdout.split('\n')) {
      const [index, name, total, free, driver] = line.split(',').map((s) => s.trim())
      if (!name || !Number.isFinite(Number(total))) continue
      gpus.push({vendor: 'nvidia', index: Number(index), name, memoryTotalBytes: Number(total) * MiB, memoryFreeBytes: Number.isFinite(Number(free)) ? Number(free) * MiB : undefined, driver})
    }
  }
  const amd = await r.run('rocm-smi', ['--showmeminfo', 'vram', '--json'], 3_000)
  if (amd && amd.exitCode === 0) {
    try {
      const data = JSON.parse(amd.stdout) as Record<string, Record<string, string>>
      for (const [card, info] of Object.entries(data)) {
        const total = Number(info['VRAM Total Memory (B)'])
        const used = Number(info['VRAM Total Used Memory (B)'])
        if (!Number.isFinite(total)) continue
        gpus.push({vendor: 'amd', index: Number(card.replace(/\D/g, '')) || 0, name: card, memoryTotalBytes: total, memoryFreeBytes: Number.isFinite(used) ? total - used : undefined})
      }
    } catch {
      notes.push('rocm-smi gave an answer that is not JSON')
    }
  }
  if (gpus.length === 0) gpus.push(...(await otherGpus(r)))
  return {gpus, notes}
}

/**
 * Neither nvidia-smi nor rocm-smi answered: the graphics controllers systeminformation sees.
 * Apple silicon's GPU uses the machine's unified memory, which is then what a model must fit in.
 */
async function otherGpus(r: SystemReader): Promise<Gpu[]> {
  const controllers = (await r.si.graphics()) ?? []
  const out: Gpu[] = []
  for (const [index, c] of controllers.entries()) {
    const v = (c.vendor ?? '').toLowerCase()
    const vendor: Gpu['vendor'] = /apple/.test(v) ? 'apple' : /intel/.test(v) ? 'intel' : /nvidia/.test(v) ? 'nvidia' : /amd|advanced micro|ati\b/.test(v) ? 'amd' : 'other'
    const unified = vendor === 'apple' || Boolean(c.vramDynamic)
    let bytes = c.vram ? c.vram * MiB : undefined
    if (vendor === 'apple') bytes = (await r.si.mem())?.total ?? bytes
    if (!bytes) continue
    out.push({vendor, index, name: c.model || c.vendor || 'GPU', memoryTotalBytes: bytes, unified})
  }
  return out
}

/** Memory where /proc/meminfo is not (macOS), from systeminformation. */
export async function readMemoryAnywhere(r: SystemReader): Promise<MemoryFacts> {
  const proc = readMemory(r)
  if (proc.totalBytes !== undefined || r.platform === 'linux') return proc
  const m = await r.si.mem()
  return m ? {totalBytes: m.total, availableBytes: m.available, swapTotalBytes: m.swaptotal, swapFreeBytes: m.swapfree} : proc
}

// ---------------------------------------------------------------- environment

export interface EnvFacts {
  proxies: Record<string, string>
  hf: Record<string, string>
  ollamaModels?: {path: string; exists: boolean; serviceUser?: string; writableByService?: boolean; writableByUs: boolean}
  openFilesSoft?: number
  /** NODE_EXTRA_CA_CERTS: the CAs trusted beside Node's own (bin/run.js sets the system's bundle unless the user did). */
  caBundle?: {path: string; readable: boolean}
  /** ~/.netrc (NETRC), which pull and bench read for a URL's login: entries, and whether others may read it. */
  netrc?: {path: string; logins: number; openToOthers: boolean}
}

export function readEnv(r: SystemReader): EnvFacts {
  const proxies: Record<string, string> = {}
  for (const name of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']) {
    if (r.env[name] !== undefined) proxies[name] = r.env[name]!
  }
  const hf: Record<string, string> = {}
  for (const name of ['HF_ENDPOINT', 'HF_HOME', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_HUB_OFFLINE', 'HF_TOKEN']) if (r.env[name] !== undefined) hf[name] = r.env[name]!
  const limits = r.read('/proc/self/limits')
  const open = limits ? /^Max open files\s+(\d+|unlimited)/m.exec(limits)?.[1] : undefined
  const ca = r.env.NODE_EXTRA_CA_CERTS
  const caBundle = ca ? {path: ca, readable: readable(ca)} : undefined
  return {proxies, hf, ollamaModels: ollamaStore(r), openFilesSoft: open === 'unlimited' ? Number.POSITIVE_INFINITY : num(open), caBundle, netrc: readNetrcFacts(r.env)}
}

/** The user's own file, not under the reader's root: where pull will look. */
function readNetrcFacts(env: NodeJS.ProcessEnv): EnvFacts['netrc'] {
  const path = netrcPath(env)
  try {
    const netrc = parseNetrc(readFileSync(path, 'utf8'))
    return {path, logins: netrc.machines.size + (netrc.default ? 1 : 0), openToOthers: (statSync(path).mode & 0o077) !== 0}
  } catch {
    return undefined
  }
}

function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK)
    return statSync(path).isFile()
  } catch {
    return false
  }
}

function ollamaStore(r: SystemReader): EnvFacts['ollamaModels'] {
  const path = r.env.OLLAMA_MODELS
  if (!path) return undefined
  const info = (() => {
    try {
      return statSync(path)
    } catch {
      return undefined
    }
  })()
  // The Linux service runs as `ollama`: can it write there?
  const user = r.read('/etc/passwd')?.split('\n').find((l) => l.startsWith('ollama:'))
  let writableByService: boolean | undefined
  if (user && info) {
    const [, , uid, gid] = user.split(':').map((x) => x)
    const mode = info.mode
    writableByService =
      (info.uid === Number(uid) && (mode & 0o200) !== 0) || (info.gid === Number(gid) && (mode & 0o020) !== 0) || (mode & 0o002) !== 0 || Number(uid) === 0
  }
  return {path, exists: Boolean(info?.isDirectory()), serviceUser: user ? 'ollama' : undefined, writableByService, writableByUs: r.writable(path)}
}
