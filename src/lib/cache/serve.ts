import {existsSync, readFileSync, renameSync, rmSync} from 'node:fs'
import {hostname} from 'node:os'
import {writeFileAtomic} from '../fs-atomic.js'
import {proxyConfig, proxyFor, type ProxyConfig} from '../net/proxy-env.js'
import {cacheEndpoints} from '../sources/cache-endpoints.js'
import {cacheUrl, generationOf, nginxConfig} from './config.js'
import {checkPortFree, endLeftoverWorkers, paths, prepareDir, readState, reloadNginx, requireNginx, runningPid, startNginx, testConfig, workerUser, writeState, type CacheState} from './nginx.js'
import {diskNote, isLoopback, mergeSettings, minFreeOf, resolversFrom, settingsOf, type CacheOptions, type SettingName} from './options.js'
import {diskOf, diskUsed} from './status.js'
import {formatBytes} from '../units.js'

/** The system's facts the configuration depends on: name servers, a CA bundle, the workers' user, the disk. */
export function withSystemFacts(o: Omit<CacheOptions, 'resolvers' | 'caFile' | 'user' | 'disk'>): CacheOptions {
  let resolvConf: string | undefined
  try {
    resolvConf = readFileSync('/etc/resolv.conf', 'utf8')
  } catch {
    resolvConf = undefined
  }
  const caFile = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'].find((f) => existsSync(f))
  return {...o, resolvers: resolversFrom(resolvConf), caFile, user: workerUser()?.name, disk: diskOf(o.dir)}
}

/** What clients put in their settings, for a cache at `url`. */
export function endpointsFor(url: string, origins: Record<string, string>): CacheState['endpoints'] {
  const {hf, modelscope} = cacheEndpoints(url)
  return {
    hf,
    modelscope,
    // What goes before a model name: ollama pull HOST:PORT/library/llama3 --insecure
    ollama: new URL(url).host,
    origins: Object.fromEntries(Object.keys(origins).map((name) => [name, `${url}/-/origin/${name}`])),
  }
}

/** The URL clients use: the listen address, or this host's name when it listens on every address. */
export function publicUrl(o: Pick<CacheOptions, 'listen'>): string {
  const wildcard = o.listen.host === '0.0.0.0' || o.listen.host === '::'
  return wildcard ? `http://${hostname()}:${o.listen.port}` : cacheUrl(o)
}

export interface ServeResult {
  state: CacheState
  pid: number
  alreadyRunning: boolean
  /** It was running with other settings, and nginx now runs with these (cache and clients kept). */
  reloaded?: boolean
  /** Said when it listens beyond loopback: who can use it now. */
  exposure?: string
  /** Said when this host's environment sends its upstreams through a proxy, which nginx cannot use. */
  proxied?: string
  /** Said when --max-size is more than the disk can give: --min-free is then the limit that holds. */
  disk?: string
  /** Said when nginx processes a dead master had left running in this --dir were ended first. */
  leftover?: string
}

/**
 * nginx has no forward-proxy client (no CONNECT), so HTTPS_PROXY does nothing for it: a cache
 * host whose way out is the site's proxy gets 502 for every model. Said at serve, since the
 * user set the variable for a reason.
 */
export function proxyWarning(o: Pick<CacheOptions, 'upstreams' | 'origins'>, config: ProxyConfig = proxyConfig()): string | undefined {
  const behind = [...Object.values(o.upstreams), ...Object.values(o.origins)].filter((url) => proxyFor(url, config))
  if (behind.length === 0) return undefined
  const shown = behind.map((url) => new URL(url).host).join(', ')
  return `a proxy is set here for ${shown}, but nginx fetches directly (it cannot use a proxy): this host must reach them and their CDNs without it, or take as upstream a cache that can (--hf-upstream URL and the like)`
}

const listenOf = (o: CacheOptions) => `${o.listen.host}:${o.listen.port}`

/** Said for a --max-size the user gave: the default's 500G is bounded by --min-free anyway, on any disk. */
const diskOfCache = (o: CacheOptions, given: ReadonlySet<SettingName>) => (given.has('maxSize') ? diskNote(o, diskUsed(paths(o.dir).cache), formatBytes) : undefined)

const exposureOf = (o: CacheOptions) =>
  isLoopback(o.listen.host)
    ? undefined
    : `listening on ${listenOf(o)}: every host that can reach it can use this cache (it has no login of its own; the hubs still check tokens): limit it with a firewall to the rack`

/** The cache's record of itself (mtune-cache.json): what status and a later serve read. */
export const stateOf = (o: CacheOptions, startedAt: string, reloadedAt?: string): CacheState => {
  const url = publicUrl(o)
  return {version: 1, url, dir: o.dir, listen: listenOf(o), endpoints: endpointsFor(url, o.origins), maxSize: o.maxSize, minFreeBytes: minFreeOf(o), startedAt, ...(reloadedAt ? {reloadedAt} : {}), settings: settingsOf(o)}
}

function readConfig(dir: string): string {
  try {
    return readFileSync(paths(dir).conf, 'utf8')
  } catch {
    return ''
  }
}

/**
 * Write the configuration into DIR, check it with nginx -t, start nginx and wait until it
 * answers. A cache already running on DIR is not started twice: the settings `given` on the
 * command line that differ from its own (a port, an upstream, --max-size, a --cdn-host) are
 * loaded into it; with none, it is reported as it is.
 */
export async function serve(options: CacheOptions, given: ReadonlySet<SettingName> = new Set()): Promise<ServeResult> {
  const nginx = requireNginx()
  const running = runningPid(options.dir)
  const saved = readState(options.dir)
  if (running && saved) {
    const asItIs = (o: CacheOptions): ServeResult => ({state: saved, pid: running, alreadyRunning: true, proxied: proxyWarning(o), disk: diskOfCache(o, given)})
    // A cache started before its settings were kept is only reported: the rest of them is unknown.
    if (!saved.settings) return asItIs(options)
    const o = mergeSettings(options, saved.settings, given)
    const config = nginxConfig(o)
    return generationOf(readConfig(o.dir)) === generationOf(config) ? asItIs(o) : reload(nginx, running, saved, o, config, given)
  }
  const o = options
  const config = nginxConfig(o)
  // A master that died left its workers on the port: they are this cache's, ended before starting anew.
  const ended = await endLeftoverWorkers(o.dir)
  await checkPortFree(o.listen)
  const user = workerUser()
  prepareDir(o.dir, user)
  writeFileAtomic(paths(o.dir).conf, config)
  await testConfig(nginx, o.dir)
  const pid = await startNginx(nginx, o.dir, cacheUrl(o))
  const state = stateOf(o, new Date().toISOString())
  writeState(o.dir, state)
  const leftover = ended.length > 0 ? `ended the nginx processes the last master left running when it died (pids ${ended.join(', ')})` : undefined
  return {state, pid, alreadyRunning: false, exposure: exposureOf(o), proxied: proxyWarning(o), disk: diskOfCache(o, given), leftover}
}

/**
 * Other settings for a running cache: checked by nginx -t beside the one in use (which stays
 * untouched if they are refused), put in place, and loaded by the running nginx, so that the
 * cached files and the clients being served are kept, as with systemctl reload.
 */
async function reload(nginx: string, pid: number, saved: CacheState, o: CacheOptions, config: string, given: ReadonlySet<SettingName>): Promise<ServeResult> {
  if (saved.listen !== listenOf(o)) await checkPortFree(o.listen)
  prepareDir(o.dir, workerUser())
  const next = `${paths(o.dir).conf}.new`
  writeFileAtomic(next, config)
  await testConfig(nginx, o.dir, next).catch((error: unknown) => {
    rmSync(next, {force: true})
    throw error
  })
  renameSync(next, paths(o.dir).conf)
  await reloadNginx(pid, o.dir, cacheUrl(o), generationOf(config)!)
  const state = stateOf(o, saved.startedAt, new Date().toISOString())
  writeState(o.dir, state)
  return {state, pid, alreadyRunning: false, reloaded: true, exposure: exposureOf(o), proxied: proxyWarning(o), disk: diskOfCache(o, given)}
}
