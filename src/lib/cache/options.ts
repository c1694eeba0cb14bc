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
  /**
   * --min-free as given: bytes ("50G") or a share of the cache's filesystem ("5%"), resolved on
   * the host that runs nginx (a systemd unit's config is written at each start).
   */
  minFree: string
  /** The size of the filesystem that holds `dir`, and what is free on it now (withSystemFacts). */
  disk?: {totalBytes: number; freeBytes: number}
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
export type CacheSettings = Pick<CacheOptions, 'listen' | 'upstreams' | 'origins' | 'maxSize' | 'cdnHosts'> & Partial<Pick<CacheOptions, 'minFree'>>
export type SettingName = 'listen' | 'hf' | 'ollama' | 'modelscope' | 'origins' | 'maxSize' | 'minFree' | 'cdnHosts'

export const settingsOf = (o: CacheOptions): CacheSettings => ({listen: o.listen, upstreams: o.upstreams, origins: o.origins, maxSize: o.maxSize, minFree: o.minFree, cdnHosts: o.cdnHosts})

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
    // A cache started before --min-free was kept runs with the default.
    minFree: pick('minFree', o.minFree, running.minFree ?? o.minFree),
    cdnHosts: pick('cdnHosts', o.cdnHosts, running.cdnHosts),
  }
}

export const DEFAULT_LISTEN = '127.0.0.1:8080'
export const DEFAULT_MAX_SIZE = '500G'
/**
 * The models this cache serves often share its disk with the server's own: the cache must never
 * be what fills it. nginx's max_size alone does not know the disk; min_free does.
 */
export const DEFAULT_MIN_FREE = '5%'

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

/** A DNS name or an IPv4 address: labels of letters, digits and inner hyphens. */
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/

/**
 * --cdn-host: a domain the hubs redirect to, matched as a suffix (cdn.example.com covers
 * eu.cdn.example.com; *.cdn.example.com and .cdn.example.com say the same). A URL, a port or a
 * typo never matches a redirect's host name, and the cache refused that CDN with a 403.
 */
export function parseCdnHost(value: string): string {
  const v = value.trim().toLowerCase()
  const fix = 'give a host name, e.g. --cdn-host cdn.example.com (its subdomains are included)'
  if (URL.canParse(v) && /^[a-z][a-z0-9+.-]*:\/\//.test(v)) throw usageError('bad-cdn-host', `invalid --cdn-host "${value}": ${fix}, not a URL: --cdn-host ${new URL(v).hostname}`)
  if (!HOST_NAME.test(v.replace(/^\*?\./, ''))) throw usageError('bad-cdn-host', `invalid --cdn-host "${value}": ${fix}`)
  return v
}

/** Every --origin: a NAME given twice for two URLs is refused, since one would have won in silence. */
export function parseOrigins(values: string[]): Record<string, string> {
  const origins: Record<string, string> = {}
  for (const value of values) {
    const [name, url] = parseOrigin(value)
    const before = origins[name]
    if (before !== undefined && before !== url) throw usageError('bad-origin', `--origin ${name} is given twice (${before} and ${url}): give each mirror its own NAME`)
    origins[name] = url
  }
  return origins
}

export function parseMaxSize(value: string): number {
  const bytes = parseSize(value, '--max-size')
  if (bytes < 64 * 1024 * 1024) throw usageError('bad-size', `--max-size ${value} is too small for a model cache: use 1G or more`)
  return bytes
}

/** A share of the filesystem, as --min-free takes one: 5%, 2.5%. */
const SHARE = /^(\d+(?:\.\d+)?)%$/

/** --min-free: a size (50G, 0 for none) or a share of the filesystem (5%, up to 50%), as given. */
export function parseMinFree(value: string): string {
  const v = value.trim()
  const pct = SHARE.exec(v)
  if (pct) {
    if (Number(pct[1]) > 50) throw usageError('bad-size', `--min-free ${value} would keep most of the disk empty: give at most 50%, or a size such as 100G`)
    return `${Number(pct[1])}%`
  }
  // The default is a share (5%): a bare 5 is far likelier that, or 5G, than 5 bytes kept free.
  if (/^\d+(\.\d+)?$/.test(v) && Number(v) !== 0) throw usageError('bad-size', `--min-free ${value}: ${v}% of the disk or ${v}G? give the unit (0 for none)`)
  return String(parseSize(v, '--min-free'))
}

/** --min-free in bytes, for a filesystem of `filesystemBytes` (undefined when unknown: a share cannot be had). */
export function minFreeBytes(minFree: string, filesystemBytes: number | undefined): number | undefined {
  const pct = SHARE.exec(minFree)
  if (!pct) return Number(minFree)
  return filesystemBytes === undefined ? undefined : Math.floor((filesystemBytes * Number(pct[1])) / 100)
}

/** nginx's min_free for these options: --min-free in bytes on the cache's disk (undefined: none can be had). */
export const minFreeOf = (o: Pick<CacheOptions, 'minFree' | 'disk'>): number | undefined => minFreeBytes(o.minFree, o.disk?.totalBytes)

/**
 * Said at serve when --max-size is more than the disk can give (what is free now, plus what the
 * cache holds already): nginx then stops at --min-free, which is the limit that holds.
 */
export function diskNote(o: Pick<CacheOptions, 'maxSize' | 'minFree' | 'disk'>, cachedBytes: number, format: (n: number) => string): string | undefined {
  if (!o.disk) return undefined
  const keep = minFreeOf(o) ?? 0
  if (o.maxSize <= o.disk.freeBytes + cachedBytes - keep) return undefined
  const kept = keep ? `nginx keeps ${format(keep)} of it free (--min-free ${o.minFree}) and evicts the least recently used files beyond that` : 'with --min-free 0, nothing stops the cache from filling it'
  return `--max-size ${format(o.maxSize)} is more than this disk can give the cache (${format(o.disk.freeBytes)} free${cachedBytes ? `, ${format(cachedBytes)} cached` : ''}): ${kept}`
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
