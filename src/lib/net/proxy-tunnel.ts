import type {Dispatcher} from 'undici'
import {TUNNEL_FAILED} from './retry-policy.js'

export type PoolFactory = (origin: URL | string, options: object) => Dispatcher

/**
 * The client for the proxy itself, made to fail a tunnel it cannot open. A proxy that closes the
 * connection instead of answering CONNECT (one that refuses a host without saying so, or cannot
 * reach it) made undici 7's ProxyAgent reconnect in a tight loop that no signal ends
 * (nodejs/undici#3897, fixed in undici 8, which needs Node 22): its socket error counts as
 * recoverable, so the request stays queued for ever. Given another code, the error fails the
 * request, and mtune's retry policy decides (retry-policy.ts: TUNNEL_FAILED). A proxy that never
 * answers is given the stall timeout, not undici's 300 s, for the same reason.
 */
export function failingTunnels(factory: PoolFactory, stallTimeoutMs: number): PoolFactory {
  return (origin, options) => {
    const client = factory(origin, {headersTimeout: stallTimeoutMs, ...options})
    const connect = client.connect.bind(client) as (o: Dispatcher.ConnectOptions, callback?: unknown) => Promise<Dispatcher.ConnectData>
    client.connect = ((o: Dispatcher.ConnectOptions, callback?: unknown) => {
      // ProxyAgent awaits the promise; anything else keeps undici's own behaviour.
      if (callback) return connect(o, callback)
      return connect(o).catch((error: {code?: string}) => {
        const what =
          error?.code === 'UND_ERR_SOCKET'
            ? `the proxy closed the connection instead of opening a tunnel to ${o.path} (it may refuse that host without saying so, or not reach it)`
            : error?.code === 'UND_ERR_HEADERS_TIMEOUT'
              ? `the proxy did not answer the request for a tunnel to ${o.path} within ${Math.round(stallTimeoutMs / 1000)} s`
              : undefined
        if (!what) throw error
        throw Object.assign(new Error(what), {code: TUNNEL_FAILED, cause: error})
      })
    }) as typeof client.connect
    return client
  }
}
