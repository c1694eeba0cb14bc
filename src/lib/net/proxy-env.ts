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
