import {Agent, EnvHttpProxyAgent, type Dispatcher} from 'undici'
import {proxyUrls} from './proxy-env.js'

export interface DispatcherOptions {
  /** No byte (headers or body) for this long means the connection is stalled. */
  stallTimeoutMs: number
  connectTimeoutMs?: number
}

/**
 * One keep-alive pool per origin, shared by every connection of a pull. HTTPS_PROXY, HTTP_PROXY
 * and NO_PROXY are honoured through undici's EnvHttpProxyAgent; TLS is always verified.
 */
export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const agentOptions = {
    connections: null,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: options.stallTimeoutMs,
    bodyTimeout: options.stallTimeoutMs,
    connect: {timeout: options.connectTimeoutMs ?? Math.min(options.stallTimeoutMs, 30_000), rejectUnauthorized: true},
  }
  return proxyUrls().length > 0 ? new EnvHttpProxyAgent(agentOptions) : new Agent(agentOptions)
}
