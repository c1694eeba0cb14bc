import {existsSync, readFileSync} from 'node:fs'
import {hostname} from 'node:os'
import {writeFileAtomic} from '../fs-atomic.js'
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
}

/**
 * Write the configuration into DIR, check it with nginx -t, start nginx and wait until it
 * answers. A cache already running on DIR is reported, not started twice.
 */
export async function serve(o: CacheOptions): Promise<ServeResult> {
  const nginx = requireNginx()
  const running = runningPid(o.dir)
  const saved = readState(o.dir)
  if (running && saved) return {state: saved, pid: running, alreadyRunning: true}
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
  return {state, pid, alreadyRunning: false, exposure}
}
