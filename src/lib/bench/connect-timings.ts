import {isIP, type Socket} from 'node:net'
import {Pool, buildConnector, type Dispatcher} from 'undici'
import {createDispatcher} from '../net/dispatcher.js'
import {proxyConfig} from '../net/proxy-env.js'

/** One connection's set-up, each phase on its own. */
export interface HopTiming {
  dnsMs?: number
  /** The TCP handshake: one round trip. */
  connectMs?: number
  tlsMs?: number
  /** When the connection was ready for the request (performance.now()). */
  readyAt: number
}

/**
 * What a dispatcher's connections cost to set up, as its connector saw them: direct connections
 * by origin, and behind a proxy the hop to the proxy and, by origin, the tunnel through it (or,
 * for plain http:// that the proxy forwards, the hop to it).
 */
export interface ConnectTimings {
  direct: Map<string, HopTiming>
  /** TCP (and TLS) to the proxy itself. */
  proxy?: HopTiming & {host: string}
  /** CONNECT through the proxy and TLS with the server, together (undici does both in one step). */
  tunnel: Map<string, {ms: number; readyAt: number}>
  /** The hop to the proxy that forwards plain http:// itself (no tunnel): its connection's set-up. */
  forward?: HopTiming & {host: string}
}

type Connector = buildConnector.connector
type ConnectOptions = Parameters<Connector>[0]
const MINE = Symbol('mtune timed connector')

const originOf = (o: ConnectOptions) => `${o.protocol}//${o.hostname}${o.port ? `:${o.port}` : ''}`

/**
 * Times a connector's phases from its socket's events: 'lookup' ends DNS, 'connect' the TCP
 * handshake, 'secureConnect' TLS. A host given as an IP address needs no lookup (0 ms).
 */
function timed(connect: Connector, record: (o: ConnectOptions, t: HopTiming) => void): Connector {
  const wrapped = ((options: ConnectOptions, callback: Parameters<Connector>[1]) => {
    const t0 = performance.now()
    let resolved = isIP(options.hostname) ? t0 : undefined
    let connected: number | undefined
    let secured: number | undefined
    const socket = connect(options, (error, s) => {
      if (!error) {
        const readyAt = performance.now()
        const tcpEnd = connected ?? secured ?? readyAt
        record(options, {
          dnsMs: resolved !== undefined ? resolved - t0 : undefined,
          connectMs: tcpEnd - (resolved ?? t0),
          tlsMs: secured !== undefined ? secured - tcpEnd : undefined,
          readyAt,
        })
      }
      callback(error as Error & null, s as Socket)
    }) as unknown as Socket | undefined
    socket?.once('lookup', () => (resolved ??= performance.now()))
    socket?.once('connect', () => (connected ??= performance.now()))
    socket?.once('secureConnect', () => (secured ??= performance.now()))
    return socket
  }) as Connector
  Object.defineProperty(wrapped, MINE, {value: true})
  return wrapped
}

/** A tunnel connector (undici's own, through the proxy) timed from start to a usable socket. */
function timedTunnel(connect: Connector, record: (o: ConnectOptions, ms: number, readyAt: number) => void): Connector {
  return ((options: ConnectOptions, callback: Parameters<Connector>[1]) => {
    const t0 = performance.now()
    return connect(options, (error, socket) => {
      if (!error) record(options, performance.now() - t0, performance.now())
      callback(error as Error & null, socket as Socket)
    })
  }) as Connector
}

/**
 * A dispatcher like the pull's (createDispatcher: HTTPS_PROXY, HTTP_PROXY and NO_PROXY through
 * undici's proxy agent, TLS verified) whose connections report their set-up times. One per probe,
 * so that every probe opens fresh connections.
 */
export function timedDispatcher(options: {timeoutMs: number}): {dispatcher: Dispatcher; timings: ConnectTimings} {
  const timeoutMs = Math.max(1, Math.ceil(options.timeoutMs))
  const timings: ConnectTimings = {direct: new Map(), tunnel: new Map()}
  // The http:// proxies that may forward plain http themselves: their own pool is the hop.
  const {httpProxy, allProxy} = proxyConfig()
  const forwarders = new Set([httpProxy, allProxy].filter((p): p is string => Boolean(p?.startsWith('http:'))).map((p) => new URL(p).origin))
  const direct = timed(buildConnector({rejectUnauthorized: true, timeout: timeoutMs}), (o, t) => timings.direct.set(originOf(o), t))
  const dispatcher = createDispatcher({
    stallTimeoutMs: timeoutMs,
    connect: direct,
    // The pool that talks to the proxy itself: the proxy hop.
    clientFactory: (origin: URL | string, opts: object) =>
      new Pool(origin, {...opts, connect: timed((opts as {connect: Connector}).connect, (o, t) => (timings.proxy = {...t, host: o.host ?? o.hostname}))}),
    // The pools for servers: through the proxy, undici's tunnel connector; otherwise ours. And
    // the pool that sends plain http:// to the proxy for it to forward.
    factory: (origin: URL | string, opts: object) => {
      const connect = (opts as {connect?: Connector}).connect
      if (typeof connect !== 'function' || (connect as unknown as Record<symbol, boolean>)[MINE]) return new Pool(origin, opts)
      if (forwarders.has(new URL(origin).origin)) {
        return new Pool(origin, {...opts, connect: timed(connect, (o, t) => (timings.forward = {...t, host: o.host ?? o.hostname}))})
      }
      return new Pool(origin, {...opts, connect: timedTunnel(connect, (o, ms, readyAt) => timings.tunnel.set(originOf(o), {ms, readyAt}))})
    },
  })
  return {dispatcher, timings}
}
