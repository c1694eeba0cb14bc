import {Agent, EnvHttpProxyAgent, type Dispatcher, type buildConnector} from 'undici'
import {proxyConfig} from './proxy-env.js'
import {streamRequest, type StreamedResponse} from './chunk-stream.js'
import {WireClient, WireUnsupported, type WireRequest} from './wire.js'

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
  if (!proxies.httpProxy && !proxies.httpsProxy) {
    const agent = new Agent(agentOptions)
    // Ranged GETs on a plain direct agent go through the wire client (wire.ts), unless told not to.
    const plain = !options.connect && !options.factory && !options.clientFactory && options.connections === undefined
    if (plain && process.env.MTUNE_HTTP_CLIENT !== 'undici') {
      wires.set(agent, {client: new WireClient({stallTimeoutMs: options.stallTimeoutMs, connectTimeoutMs: options.connectTimeoutMs ?? Math.min(options.stallTimeoutMs, 30_000)}), undiciOnly: new Set()})
    }
    return agent
  }
  // Empty strings, not undefined, for what is unset: undici would otherwise read the variables again.
  return new EnvHttpProxyAgent({...agentOptions, httpProxy: proxies.httpProxy ?? '', httpsProxy: proxies.httpsProxy ?? '', noProxy: proxies.noProxy ?? ''})
}

const wires = new WeakMap<Dispatcher, {client: WireClient; undiciOnly: Set<string>}>()

/**
 * GET a range (or anything whose body is read as a ChunkStream) through `dispatcher`: by the
 * wire client where the dispatcher reaches servers directly, else by undici. An origin whose
 * 206 the wire client cannot frame (chunked, or ending with the connection) is asked again
 * through undici, and from then on only there.
 */
export async function requestBody(dispatcher: Dispatcher, req: WireRequest, signal?: AbortSignal): Promise<StreamedResponse> {
  const wire = wires.get(dispatcher)
  if (wire && !wire.undiciOnly.has(req.origin)) {
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
