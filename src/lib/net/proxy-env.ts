/**
 * The proxies the environment names, for undici's EnvHttpProxyAgent. Without dependencies, so
 * that commands can mask the credentials in them before the network code is loaded.
 *
 * Each variable is read in lower case, then upper case, and an empty value counts as unset:
 * `http_proxy=` exported empty (common in shell profiles) must not hide HTTP_PROXY, as it would
 * in undici's own reading (`??` takes the empty string).
 */
export interface ProxyConfig {
  httpProxy?: string
  httpsProxy?: string
  noProxy?: string
}

const first = (env: NodeJS.ProcessEnv, name: string) => env[name.toLowerCase()] || env[name.toUpperCase()] || undefined

export function proxyConfig(env: NodeJS.ProcessEnv = process.env): ProxyConfig {
  return {httpProxy: first(env, 'http_proxy'), httpsProxy: first(env, 'https_proxy'), noProxy: first(env, 'no_proxy')}
}

export function proxyUrls(env: NodeJS.ProcessEnv = process.env): string[] {
  return ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].map((name) => env[name]).filter((v): v is string => Boolean(v))
}

const DEFAULT_PORTS: Record<string, number> = {'http:': 80, 'https:': 443}

/**
 * The proxy a request to `url` goes through, or undefined where it goes direct: the choice
 * undici's EnvHttpProxyAgent makes (7.x, env-http-proxy-agent.js) for the same config, so
 * that mtune's own range client (wire.ts) can take exactly the requests undici would send
 * direct. https:// goes through the HTTPS proxy, else the HTTP one; http:// only through the
 * HTTP one. NO_PROXY: entries split on commas or spaces, `*` for every host, a leading `.` or
 * `*.` dropped, a host matching itself and its subdomains, `HOST:PORT` only that port.
 */
export function proxyFor(url: URL | string, config: ProxyConfig): string | undefined {
  const u = typeof url === 'string' ? new URL(url) : url
  const proxy = u.protocol === 'https:' ? config.httpsProxy || config.httpProxy : config.httpProxy
  if (!proxy) return undefined
  // As undici: the port stripped from host, so that an IPv6 address keeps its brackets.
  const hostname = u.host.replace(/:\d*$/, '').toLowerCase()
  const port = Number.parseInt(u.port, 10) || DEFAULT_PORTS[u.protocol] || 0
  const noProxy = config.noProxy ?? ''
  if (noProxy === '*') return undefined
  for (const entry of noProxy.split(/[,\s]/)) {
    if (!entry) continue
    const parsed = /^(.+):(\d+)$/.exec(entry)
    const host = (parsed ? parsed[1]! : entry).replace(/^\*?\./, '').toLowerCase()
    const only = parsed ? Number.parseInt(parsed[2]!, 10) : 0
    if (only && only !== port) continue
    if (hostname === host || hostname.endsWith(`.${host}`)) return undefined
  }
  return proxy
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
