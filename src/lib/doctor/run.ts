import {endpointUrl} from '../env-settings.js'
import {combineLink, lastBench, type LinkEstimate} from '../bench/link.js'
import {readBlock, readDisk, readEnv, readGpus, readMemoryAnywhere, readNetwork, type GpuFacts} from '../system/facts.js'
import type {SystemReader} from '../system/reader.js'
import {diskChecks, envChecks, gpuChecks, ioChecks, memoryChecks, networkChecks, notApplicable, type CacheProbe, type DoctorFacts, type ProxyProbe} from './checks.js'
import {GROUPS, type Finding, type Group, type Status} from './finding.js'

export interface DoctorOptions {
  path: string
  /** The model's size: what a pull writes. */
  size?: number
  /** What a runtime loads of it, for RAM and VRAM (default size). */
  loads?: number
  /** What is still to be downloaded, for disk space (default: size). */
  missing?: number
  rttMs?: number
  bandwidthBps?: number
  groups?: Group[]
}

/** Bandwidth and RTT, each given, else from the last bench, else the interface speed (bandwidth) or assumed (RTT). */
export function estimateLink(options: Pick<DoctorOptions, 'bandwidthBps' | 'rttMs'>, env: NodeJS.ProcessEnv, ifaceMbps?: number): LinkEstimate {
  return combineLink(options, lastBench(env), ifaceMbps)
}

/**
 * The cache this machine is pointed at (MTUNE_CACHE, else HF_ENDPOINT): its /-/mtune page, through
 * the pull's dispatcher (proxies as a pull sees them), within a second and a half.
 */
async function probeCache(env: NodeJS.ProcessEnv): Promise<CacheProbe | undefined> {
  const from = env.MTUNE_CACHE ? 'MTUNE_CACHE' : env.HF_ENDPOINT ? 'HF_ENDPOINT' : undefined
  if (!from) return undefined
  const [{createDispatcher}, {probeCache: probe}, {proxyProblem}, {parseCacheUrl}] = await Promise.all([
    import('../net/dispatcher.js'),
    import('../sources/cache-probe.js'),
    import('../net/proxy-env.js'),
    import('../sources/cache-endpoints.js'),
  ])
  let url = env[from]!.replace(/\/+$/, '')
  // Read as a pull reads it (HOST:PORT included): one that a pull refuses is said so, not probed.
  try {
    url = from === 'MTUNE_CACHE' ? parseCacheUrl(url) : endpointUrl(url, from)
  } catch (error) {
    return {url, from, answers: false, mtune: false, invalid: (error as Error).message}
  }
  // Not reachable as a pull would reach it: the proxy finding says why.
  if (proxyProblem(env)) return undefined
  const dispatcher = createDispatcher({stallTimeoutMs: 1_500})
  try {
    return {url, from, ...(await probe(dispatcher, url, {timeoutMs: 1_500}))}
  } finally {
    await dispatcher.destroy().catch(() => {})
  }
}

/**
 * Each proxy the variables name (none when one cannot be used: the proxy finding says why): a TCP
 * connection to it, within a second and a half, in parallel.
 */
async function probeProxies(env: NodeJS.ProcessEnv): Promise<ProxyProbe[] | undefined> {
  const [{proxyConfig, proxyEndpoint, proxyProblem}, {connect}] = await Promise.all([import('../net/proxy-env.js'), import('node:net')])
  if (proxyProblem(env)) return undefined
  const c = proxyConfig(env)
  const endpoints = [c.httpsProxy, c.httpProxy, c.allProxy].filter((u): u is string => Boolean(u)).map(proxyEndpoint)
  // One probe per proxy, however many variables name it.
  const distinct = endpoints.filter((p, i) => endpoints.findIndex((q) => q.host === p.host && q.port === p.port) === i)
  return Promise.all(
    distinct.map(({host, port, shown}) => {
      const started = performance.now()
      return new Promise<ProxyProbe>((resolve) => {
        const socket = connect({host, port, timeout: 1_500})
        const done = (p: Omit<ProxyProbe, 'proxy'>) => {
          socket.destroy()
          resolve({proxy: shown, ...p})
        }
        socket.once('connect', () => done({answers: true, ms: performance.now() - started}))
        socket.once('timeout', () => done({answers: false, error: 'no answer within 1.5 s'}))
        socket.once('error', (e: NodeJS.ErrnoException) => done({answers: false, error: e.code === 'ECONNREFUSED' ? 'connection refused' : e.code === 'ENOTFOUND' ? 'host not found' : (e.code ?? e.message)}))
      })
    }),
  )
}

/** Read what the chosen checks need; the reading is the only I/O doctor does. */
export async function gatherFacts(r: SystemReader, options: DoctorOptions): Promise<DoctorFacts> {
  const groups = new Set(options.groups ?? GROUPS)
  const disk = readDisk(r, options.path)
  const network = readNetwork(r)
  const gpus: GpuFacts = groups.has('gpu') ? await readGpus(r) : {gpus: [], notes: []}
  return {
    size: options.size,
    loads: options.loads,
    disk,
    block: groups.has('io') ? readBlock(r, disk.mount) : {chain: [], disks: []},
    memory: await readMemoryAnywhere(r),
    platform: r.platform,
    gpus,
    network,
    env: readEnv(r),
    link: estimateLink(options, r.env, network.iface?.speedMbps),
    cache: groups.has('env') ? await probeCache(r.env) : undefined,
    proxies: groups.has('env') ? await probeProxies(r.env) : undefined,
  }
}

/** The verdicts: pure, from facts alone. */
export function decide(facts: DoctorFacts, groups: Group[] = GROUPS, missing?: number): Finding[] {
  const checks: Record<Group, (f: DoctorFacts) => Finding[]> = {
    disk: (f) => diskChecks(f, missing),
    memory: memoryChecks,
    gpu: gpuChecks,
    // Sysctls, qdiscs and block schedulers are Linux's: elsewhere they do not apply.
    network: (f) => (f.platform && f.platform !== 'linux' ? [notApplicable('network', f.platform)] : networkChecks(f)),
    io: (f) => (f.platform && f.platform !== 'linux' ? [notApplicable('io', f.platform)] : ioChecks(f)),
    env: envChecks,
  }
  return GROUPS.filter((g) => groups.includes(g)).flatMap((g) => checks[g](facts))
}

export function tally(findings: Finding[]): Record<Status, number> {
  const counts: Record<Status, number> = {pass: 0, warn: 0, fail: 0, info: 0, unknown: 0}
  for (const f of findings) counts[f.status]++
  return counts
}
