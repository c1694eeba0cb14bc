import {usageError} from '../errors.js'
import {parseSize} from '../units.js'

/** Where each hub's requests go by default: the public services. */
export const DEFAULT_UPSTREAMS = {
  hf: 'https://huggingface.co',
  ollama: 'https://registry.ollama.ai',
  modelscope: 'https://www.modelscope.cn',
} as const

export interface CacheOptions {
  /** Everything nginx needs lives here: configuration, pid, logs, cache, temp files. */
  dir: string
  listen: {host: string; port: number}
  upstreams: {hf: string; ollama: string; modelscope: string}
  /** Plain file mirrors: /-/origin/NAME/PATH is PATH on URL. */
  origins: Record<string, string>
  /** nginx's max_size for the cache, in bytes. */
  maxSize: number
  /** Name servers for CDN host names (nginx resolves them itself), from /etc/resolv.conf. */
  resolvers: string[]
  /** More CDN host names (suffixes) the cache may fetch from, beyond the built-in ones. */
  cdnHosts: string[]
  /** When run as root: the unprivileged user nginx's workers run as. */
  user?: string
  /** The CA bundle https upstreams are verified against. */
  caFile?: string
}

/** What a user sets with serve's flags, kept in the cache's state so that a later serve can change one. */
export type CacheSettings = Pick<CacheOptions, 'listen' | 'upstreams' | 'origins' | 'maxSize' | 'cdnHosts'>
export type SettingName = 'listen' | 'hf' | 'ollama' | 'modelscope' | 'origins' | 'maxSize' | 'cdnHosts'

export const settingsOf = (o: CacheOptions): CacheSettings => ({listen: o.listen, upstreams: o.upstreams, origins: o.origins, maxSize: o.maxSize, cdnHosts: o.cdnHosts})

/**
 * A serve against a running cache changes what its flags name and keeps the rest: a bare
 * `serve --dir D` (to see the endpoints) must not move a rack's cache back to the defaults. A
 * repeatable flag given (--origin, --cdn-host) replaces its whole list.
 */
export function mergeSettings(o: CacheOptions, running: CacheSettings, given: ReadonlySet<SettingName>): CacheOptions {
  const pick = <T>(name: SettingName, mine: T, theirs: T) => (given.has(name) ? mine : theirs)
  return {
    ...o,
    listen: pick('listen', o.listen, running.listen),
    upstreams: {hf: pick('hf', o.upstreams.hf, running.upstreams.hf), ollama: pick('ollama', o.upstreams.ollama, running.upstreams.ollama), modelscope: pick('modelscope', o.upstreams.modelscope, running.upstreams.modelscope)},
    origins: pick('origins', o.origins, running.origins),
    maxSize: pick('maxSize', o.maxSize, running.maxSize),
    cdnHosts: pick('cdnHosts', o.cdnHosts, running.cdnHosts),
  }
}

export const DEFAULT_LISTEN = '127.0.0.1:8080'
export const DEFAULT_MAX_SIZE = '500G'

/** HOST:PORT, [V6]:PORT or a bare PORT (on loopback). */
export function parseListen(value: string): {host: string; port: number} {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value.trim()) ?? /^()()(\d{1,5})$/.exec(value.trim())
  const port = m ? Number(m[3]) : Number.NaN
  if (!m || !(port >= 1 && port <= 65535)) {
    throw usageError('bad-listen', `invalid --listen "${value}": use HOST:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080`)
  }
  return {host: m[1] || m[2] || '127.0.0.1', port}
}

export const isLoopback = (host: string) => /^(127\.\d+\.\d+\.\d+|::1|localhost)$/i.test(host)

/** An upstream: an absolute http(s) URL, origin only (a path would be silently dropped by nginx). */
export function parseUpstream(value: string, flag: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw usageError('bad-upstream', `invalid ${flag} "${value}": give an http:// or https:// URL, e.g. https://huggingface.co`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usageError('bad-upstream', `invalid ${flag} "${value}": only http:// and https:// upstreams are supported`)
  if (url.username || url.password) throw usageError('bad-upstream', `invalid ${flag} "${value}": a cache upstream cannot carry credentials (clients send their own tokens)`)
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    throw usageError('bad-upstream', `invalid ${flag} "${value}": give the origin only (${url.origin}), without a path`)
  }
  return url.origin
}

/** --origin NAME=URL: a plain file mirror (a URL prefix; files below it are cached). */
export function parseOrigin(value: string): [string, string] {
  const m = /^([A-Za-z0-9][A-Za-z0-9_.-]{0,62})=(.+)$/.exec(value)
  if (!m) throw usageError('bad-origin', `invalid --origin "${value}": use NAME=URL, e.g. --origin models=https://mirror.example.com/models`)
  let url: URL
  try {
    url = new URL(m[2])
  } catch {
    throw usageError('bad-origin', `invalid --origin "${value}": ${m[2]} is not a URL`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usageError('bad-origin', `invalid --origin "${value}": only http:// and https:// are supported`)
  if (url.username || url.password || url.search || url.hash) throw usageError('bad-origin', `invalid --origin "${value}": give a plain URL prefix, without credentials or a query`)
  return [m[1], url.href.replace(/\/+$/, '')]
}

export function parseMaxSize(value: string): number {
  const bytes = parseSize(value, '--max-size')
  if (bytes < 64 * 1024 * 1024) throw usageError('bad-size', `--max-size ${value} is too small for a model cache: use 1G or more`)
  return bytes
}

/** The name servers in resolv.conf, as nginx's resolver directive wants them (IPv6 in brackets). */
export function resolversFrom(resolvConf: string | undefined): string[] {
  const out: string[] = []
  for (const line of (resolvConf ?? '').split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line)
    if (!m) continue
    const address = m[1].replace(/%.*$/, '')
    out.push(address.includes(':') ? `[${address}]` : address)
  }
  return out
}
