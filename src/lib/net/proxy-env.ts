import {BlockList, isIP} from 'node:net'

/**
 * The proxies the environment names, and which requests go through them (proxy-router.ts).
 * Without dependencies, so that commands can mask the credentials in them before the network
 * code is loaded.
 *
 * Each variable is read in lower case, then upper case, and an empty value counts as unset:
 * `http_proxy=` exported empty (common in shell profiles) must not hide HTTP_PROXY, as it would
 * in undici's own reading (`??` takes the empty string).
 */
export interface ProxyConfig {
  httpProxy?: string
  httpsProxy?: string
  /** ALL_PROXY: for either scheme where its own is not set, as curl and requests read it. */
  allProxy?: string
  noProxy?: string
}

/** The variable that is read for `name` (lower case first), and its value; an empty one counts as unset. */
function first(env: NodeJS.ProcessEnv, name: string): [string, string] | undefined {
  for (const spelled of [name.toLowerCase(), name.toUpperCase()]) if (env[spelled]) return [spelled, env[spelled]]
  return undefined
}

const SUPPORTED = new Set(['http:', 'https:', 'socks5:', 'socks:'])

/** A proxy value with its scheme: without one it is an http:// proxy, as curl, wget and requests read it. */
function withScheme(value: string): string {
  const v = value.trim()
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? v : `http://${v}`
}

/**
 * A proxy variable's value as undici takes it, read as curl reads it: `proxy.corp:3128` (no
 * scheme, which undici alone rejected as an invalid URL) is an http:// proxy, and socks5h:// is
 * socks5:// (undici's SOCKS5 client hands the host name to the proxy to resolve, which is what
 * the h asks for). What undici cannot use comes back as a problem, in words.
 */
export function readProxyUrl(value: string): {url: string} | {problem: string} {
  const url = withScheme(value).replace(/^socks5h:/i, 'socks5:')
  if (!URL.canParse(url) || !new URL(url).hostname) return {problem: 'not a proxy address: write it as http://HOST:PORT'}
  const {protocol} = new URL(url)
  if (!SUPPORTED.has(protocol)) return {problem: `${protocol}// proxies are not supported: give an http://, https:// or socks5:// proxy`}
  return {url}
}

const usable = (entry: [string, string] | undefined) => {
  const read = entry && readProxyUrl(entry[1])
  return read && 'url' in read ? read.url : undefined
}

/** The proxies mtune uses; a value it cannot use is left out here and reported by proxyProblem. */
export function proxyConfig(env: NodeJS.ProcessEnv = process.env): ProxyConfig {
  const all = usable(first(env, 'all_proxy'))
  return {httpProxy: usable(first(env, 'http_proxy')), httpsProxy: usable(first(env, 'https_proxy')), ...(all ? {allProxy: all} : {}), noProxy: first(env, 'no_proxy')?.[1]}
}

/** What is wrong with the proxy variable mtune would read, as one line naming it (password hidden); undefined when nothing is. */
export function proxyProblem(env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const name of ['https_proxy', 'http_proxy', 'all_proxy']) {
    const entry = first(env, name)
    const read = entry && readProxyUrl(entry[1])
    if (entry && read && 'problem' in read) return `${entry[0]}=${hideCredentials(entry[1])}: ${read.problem}`
  }
  return undefined
}

/** Every proxy value set, with its scheme: their credentials are masked in anything printed. */
export function proxyUrls(env: NodeJS.ProcessEnv = process.env): string[] {
  return ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy'].map((name) => env[name]).filter((v): v is string => Boolean(v)).map(withScheme)
}

/** A proxy value fit to print: no password, with or without a scheme. */
export const hideCredentials = (value: string) => value.replace(/^([a-z][a-z0-9+.-]*:\/\/)?([^:@/]+):[^@/]*@/i, '$1$2:***@')

/** A URL's port where it writes none; for a proxy too (SOCKS's is 1080). */
const DEFAULT_PORTS: Record<string, number> = {'http:': 80, 'https:': 443, 'socks5:': 1080, 'socks:': 1080}

/**
 * The proxy a request to `url` goes through, or undefined where it goes direct: the one decision
 * that both undici (proxy-router.ts) and mtune's own range client (wire.ts) follow. https:// goes
 * through the HTTPS proxy, else the HTTP one (as undici); http:// only through the HTTP one; for
 * either, ALL_PROXY where those are not set (as curl and requests). NO_PROXY, as
 * undici reads it: entries split on commas or spaces, `*` for every host, a leading `.` or `*.`
 * dropped, a host matching itself and its subdomains, `HOST:PORT` only that port. Beyond undici,
 * as curl (7.86+), Go and requests read it: an address range (`10.0.0.0/8`, `fd00::/8`) covers
 * the addresses in it, and an IPv6 address may be written without brackets (`::1`).
 */
export function proxyFor(url: URL | string, config: ProxyConfig): string | undefined {
  const u = typeof url === 'string' ? new URL(url) : url
  const proxy = (u.protocol === 'https:' ? config.httpsProxy || config.httpProxy : config.httpProxy) || config.allProxy
  if (!proxy) return undefined
  // As undici: the port stripped from host, so that an IPv6 address keeps its brackets.
  const hostname = u.host.replace(/:\d*$/, '').toLowerCase()
  const port = Number.parseInt(u.port, 10) || DEFAULT_PORTS[u.protocol] || 0
  const entries = noProxyEntries(config.noProxy ?? '')
  if (entries === '*') return undefined
  const ip = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname
  const family = isIP(ip)
  for (const entry of entries) {
    if (entry.port && entry.port !== port) continue
    if (entry.range) {
      if (family && entry.range.check(ip, family === 6 ? 'ipv6' : 'ipv4')) return undefined
    } else if (hostname === entry.host || hostname.endsWith(`.${entry.host}`)) return undefined
  }
  return proxy
}

interface NoProxyEntry {
  host?: string
  range?: BlockList
  /** 0: any port. */
  port: number
}

/** NO_PROXY read once per value: proxyFor runs for every range request's routing. */
const readNoProxy = new Map<string, NoProxyEntry[] | '*'>()

function noProxyEntries(noProxy: string): NoProxyEntry[] | '*' {
  let entries = readNoProxy.get(noProxy)
  if (!entries) readNoProxy.set(noProxy, (entries = noProxy === '*' ? '*' : noProxy.split(/[,\s]/).filter(Boolean).map(noProxyEntry)))
  return entries
}

function noProxyEntry(entry: string): NoProxyEntry {
  const cidr = /^\[?([0-9a-f.:]+)\]?\/(\d{1,3})$/i.exec(entry)
  const family = cidr ? isIP(cidr[1]!) : 0
  if (cidr && family && Number(cidr[2]) <= (family === 6 ? 128 : 32)) {
    const range = new BlockList()
    range.addSubnet(cidr[1]!, Number(cidr[2]), family === 6 ? 'ipv6' : 'ipv4')
    return {range, port: 0}
  }
  const bare = entry.replace(/^\[|\]$/g, '')
  if (isIP(bare) === 6) return {host: `[${bare.toLowerCase()}]`, port: 0}
  const parsed = /^(.+):(\d+)$/.exec(entry)
  return {host: (parsed ? parsed[1]! : entry).replace(/^\*?\./, '').toLowerCase(), port: parsed ? Number.parseInt(parsed[2]!, 10) : 0}
}

/**
 * The proxy (host:port) that forwards a request to `url` itself rather than tunnelling it: plain
 * http:// through an http:// proxy (dispatcher.ts). Its own refusals and errors then arrive as
 * HTTP answers, indistinguishable from the server's, so messages name it.
 */
export function forwardingProxy(url: string, config: ProxyConfig = proxyConfig()): string | undefined {
  if (!url.startsWith('http:')) return undefined
  const proxy = proxyFor(url, config)
  return proxy?.startsWith('http:') ? new URL(proxy).host : undefined
}

/** Where a proxy (a value proxyConfig gives) is reached: host without IPv6 brackets, port (its scheme's default where unwritten), and HOST:PORT as written. */
export function proxyEndpoint(proxy: string): {host: string; port: number; shown: string} {
  const url = new URL(proxy)
  return {host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port) || DEFAULT_PORTS[url.protocol] || 80, shown: url.host}
}
