import {Agent, Pool, ProxyAgent, type Dispatcher, type buildConnector} from 'undici'
import {ProxyRouter} from './proxy-router.js'
import {fixPausedFinish} from './undici-paused-finish.js'
import {forwardingProxy, proxyConfig, proxyFor, proxyProblem} from './proxy-env.js'
import {usageError} from '../errors.js'
import {streamRequest, type StreamedResponse} from './chunk-stream.js'
import {failingTunnels, type PoolFactory} from './proxy-tunnel.js'
import {WireClient, WireUnsupported, type WireRequest} from './wire.js'

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
 * connection of a pull. HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY are honoured as
 * proxyFor reads them (proxy-router.ts), through undici's ProxyAgent; TLS is always verified.
 * pull, model sources, probes, bench and --auto all dispatch through it, so all of them work
 * behind a proxy.
 */
export function createDispatcher(options: DispatcherOptions): Dispatcher {
  fixPausedFinish()
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
  // A proxy variable undici cannot use is the user's to fix, not an "unexpected error: Invalid URL".
  const problem = proxyProblem()
  if (problem) throw usageError('bad-proxy', problem)
  const proxies = proxyConfig()
  const proxied = Boolean(proxies.httpProxy || proxies.httpsProxy || proxies.allProxy)
  const agent = proxied
    ? new ProxyRouter(new Agent(agentOptions), proxies, (proxy) =>
        new ProxyAgent({
          ...agentOptions,
          uri: proxy,
          // Plain http:// goes to the proxy as a request for the absolute URL (RFC 9112 §3.2.2), as
          // curl, wget and huggingface_hub send it, not through a CONNECT tunnel: Squid's and most
          // proxies' default rules open tunnels to port 443 only, so a tunnel to an internal mirror
          // or rack cache on port 80 or 8080 was refused. undici 8.7 made this its default
          // (nodejs/undici#5116). https:// is still tunnelled.
          proxyTunnel: false,
          clientFactory: failingTunnels(options.clientFactory ?? ((origin, o) => new Pool(origin, o)), options.stallTimeoutMs),
        }),
        // Set on each proxied request: undici makes the client that forwards plain http (with
        // only a connector) and the SOCKS5 pools without the agent's timeouts.
        options.stallTimeoutMs,
      )
    : new Agent(agentOptions)
  // Ranged GETs that the agent sends direct go through the wire client (wire.ts), unless told
  // not to: with a proxy set, those to hosts in NO_PROXY, such as a rack cache or an internal
  // mirror, which are the fat pipes where the client's cost per byte is the limit.
  const plain = !options.connect && !options.factory && !options.clientFactory && options.connections === undefined
  if (plain && process.env.MTUNE_HTTP_CLIENT !== 'undici') {
    const client = new WireClient({stallTimeoutMs: options.stallTimeoutMs, connectTimeoutMs: options.connectTimeoutMs ?? Math.min(options.stallTimeoutMs, 30_000)})
    // With a proxy set, the router's own choice (a few string operations per request).
    wires.set(agent, {client, undiciOnly: new Set(), direct: proxied ? (origin) => proxyFor(origin, proxies) === undefined : () => true})
  }
  return agent
}

const wires = new WeakMap<Dispatcher, {client: WireClient; undiciOnly: Set<string>; direct: (origin: string) => boolean}>()

/** The wire client that takes `origin`'s range requests through `dispatcher`, if one does. */
function wireFor(dispatcher: Dispatcher, origin: string) {
  const wire = wires.get(dispatcher)
  return wire && wire.direct(origin) && !wire.undiciOnly.has(origin) ? wire : undefined
}

/** Which client sends `origin`'s range requests through `dispatcher`: mtune's own (wire.ts) or undici. */
export const rangeClient = (dispatcher: Dispatcher, origin: string): 'wire' | 'undici' => (wireFor(dispatcher, origin) ? 'wire' : 'undici')

/** For --debug: how `url`'s range requests travel (which client, which proxy if any). */
export function rangeRoute(dispatcher: Dispatcher, url: string): string {
  const {origin} = new URL(url)
  const proxy = proxyFor(origin, proxyConfig())
  const via = proxy ? `via proxy ${new URL(proxy).host} (${forwardingProxy(url) ? 'forwarded' : 'tunnel'})` : 'direct'
  return `range requests to ${origin}: ${rangeClient(dispatcher, origin) === 'wire' ? "mtune's client" : 'undici'}, ${via}`
}

/**
 * GET a range (or anything whose body is read as a ChunkStream) through `dispatcher`: by the
 * wire client where the dispatcher reaches the server directly, else by undici. An origin whose
 * 206 the wire client cannot frame (chunked, or ending with the connection) is asked again
 * through undici, and from then on only there.
 */
export async function requestBody(dispatcher: Dispatcher, req: WireRequest, signal?: AbortSignal): Promise<StreamedResponse> {
  const wire = wireFor(dispatcher, req.origin)
  if (wire) {
    try {
      return await wire.client.request(req, signal)
    } catch (error) {
      if (!(error instanceof WireUnsupported)) throw error
      wire.undiciOnly.add(req.origin)
    }
  }
  return streamRequest(dispatcher, {origin: req.origin, path: req.path, method: 'GET', headers: req.headers}, signal)
}

/** Close the wire client's idle connections along with the dispatcher's. */
export async function closeDispatcher(dispatcher: Dispatcher): Promise<void> {
  wires.get(dispatcher)?.client.close()
  await dispatcher.destroy().catch(() => {})
}
