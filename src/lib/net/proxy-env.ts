/**
 * The proxies the environment names for undici's EnvHttpProxyAgent. Without dependencies, so
 * that commands can mask the credentials in them before the network code is loaded.
 */
export function proxyUrls(env: NodeJS.ProcessEnv = process.env): string[] {
  return ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].map((name) => env[name]).filter((v): v is string => Boolean(v))
}
