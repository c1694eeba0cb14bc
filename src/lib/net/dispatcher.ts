import {Agent, EnvHttpProxyAgent, type Dispatcher, type buildConnector} from 'undici'
import {proxyConfig} from './proxy-env.js'

type PoolFactory = (origin: URL | string, options: object) => Dispatcher

export interface DispatcherOptions {
  /** No byte (headers or body) for this long means the connection is stalled. */
  stallTimeoutMs: number
  connectTimeoutMs?: number
  /** Connections per origin at most (the bench grid's cells); unlimited by default. */
  connections?: number
  /** For probes that time their connections (bench/connect-timings.ts): the direct connector. */
  connect?: buildConnector.connector
  /** The pools for servers, and (behind a proxy) the one for the proxy itself. */
  factory?: PoolFactory
  clientFactory?: PoolFactory
}

/**
 * The one way mtune reaches a server: one keep-alive pool per origin, shared by every
 * connection of a pull. HTTPS_PROXY, HTTP_PROXY and NO_PROXY are honoured through undici's
 * EnvHttpProxyAgent; TLS is always verified. pull, model sources, probes, bench and --auto all
 * dispatch through it, so all of them work behind a proxy.
 */
export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const agentOptions = {
    connections: options.connections ?? null,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: options.stallTimeoutMs,
    bodyTimeout: options.stallTimeoutMs,
    connect: options.connect ?? {timeout: options.connectTimeoutMs ?? Math.min(options.stallTimeoutMs, 30_000), rejectUnauthorized: true},
    ...(options.factory ? {factory: options.factory} : {}),
    ...(options.clientFactory ? {clientFactory: options.clientFactory} : {}),
  }
  const proxies = proxyConfig()
  if (!proxies.httpProxy && !proxies.httpsProxy) return new Agent(agentOptions)
  // Empty strings, not undefined, for what is unset: undici would otherwise read the variables again.
  return new EnvHttpProxyAgent({...agentOptions, httpProxy: proxies.httpProxy ?? '', httpsProxy: proxies.httpsProxy ?? '', noProxy: proxies.noProxy ?? ''})
}
