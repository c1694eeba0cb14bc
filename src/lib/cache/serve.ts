import {existsSync, readFileSync} from 'node:fs'
import {hostname} from 'node:os'
import {writeFileAtomic} from '../fs-atomic.js'
import {proxyConfig, proxyFor, type ProxyConfig} from '../net/proxy-env.js'
import {cacheEndpoints} from '../sources/cache-endpoints.js'
import {cacheUrl, nginxConfig} from './config.js'
import {checkPortFree, paths, prepareDir, readState, requireNginx, runningPid, startNginx, testConfig, workerUser, writeState, type CacheState} from './nginx.js'
import {isLoopback, resolversFrom, type CacheOptions} from './options.js'

/** The system's facts the configuration depends on: name servers, a CA bundle, the workers' user. */
export function withSystemFacts(o: Omit<CacheOptions, 'resolvers' | 'caFile' | 'user'>): CacheOptions {
  let resolvConf: string | undefined
  try {
    resolvConf = readFileSync('/etc/resolv.conf', 'utf8')
  } catch {
    resolvConf = undefined
  }
  const caFile = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'].find((f) => existsSync(f))
  return {...o, resolvers: resolversFrom(resolvConf), caFile, user: workerUser()?.name}
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
  /** Said when it listens beyond loopback: who can use it now. */
  exposure?: string
  /** Said when this host's environment sends its upstreams through a proxy, which nginx cannot use. */
  proxied?: string
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

/**
 * Write the configuration into DIR, check it with nginx -t, start nginx and wait until it
 * answers. A cache already running on DIR is reported, not started twice.
 */
export async function serve(o: CacheOptions): Promise<ServeResult> {
  const nginx = requireNginx()
  const running = runningPid(o.dir)
  const saved = readState(o.dir)
  if (running && saved) return {state: saved, pid: running, alreadyRunning: true, proxied: proxyWarning(o)}
  await checkPortFree(o.listen)
  const user = workerUser()
  prepareDir(o.dir, user)
  writeFileAtomic(paths(o.dir).conf, nginxConfig(o))
  await testConfig(nginx, o.dir)
  const url = publicUrl(o)
  const pid = await startNginx(nginx, o.dir, cacheUrl(o))
  const state: CacheState = {
    version: 1,
    url,
    dir: o.dir,
    listen: `${o.listen.host}:${o.listen.port}`,
    endpoints: endpointsFor(url, o.origins),
    maxSize: o.maxSize,
    startedAt: new Date().toISOString(),
  }
  writeState(o.dir, state)
  const exposure = isLoopback(o.listen.host)
    ? undefined
    : `listening on ${o.listen.host}:${o.listen.port}: every host that can reach it can use this cache (it has no login of its own; the hubs still check tokens): limit it with a firewall to the rack`
  return {state, pid, alreadyRunning: false, exposure, proxied: proxyWarning(o)}
}
