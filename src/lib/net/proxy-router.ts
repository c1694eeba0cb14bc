import {Dispatcher} from 'undici'
import {proxyFor, type ProxyConfig} from './proxy-env.js'

/**
 * Sends each request direct or through its proxy as proxyFor (proxy-env.ts) decides: the one
 * reading of HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY, which mtune's own range client
 * follows too.
 * It replaces undici's EnvHttpProxyAgent, whose NO_PROXY has no CIDR ranges (10.0.0.0/8), which
 * curl, Go, requests and huggingface_hub honour and Kubernetes clusters set: a rack cache at
 * 10.0.0.5 went out through the proxy. One agent per proxy, made when first needed.
 */
export class ProxyRouter extends Dispatcher {
  private readonly viaProxy = new Map<string, Dispatcher>()

  constructor(
    private readonly direct: Dispatcher,
    private readonly proxies: ProxyConfig,
    private readonly agentFor: (proxy: string) => Dispatcher,
    /** The stall timeout, set on each proxied request (undici builds some of a proxy's pools without the agent's). */
    private readonly stallTimeoutMs: number,
  ) {
    super()
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const proxy = options.origin === undefined ? undefined : proxyFor(options.origin, this.proxies)
    if (!proxy) return this.direct.dispatch(options, handler)
    let agent = this.viaProxy.get(proxy)
    if (!agent) this.viaProxy.set(proxy, (agent = this.agentFor(proxy)))
    return agent.dispatch({headersTimeout: this.stallTimeoutMs, bodyTimeout: this.stallTimeoutMs, ...options}, handler)
  }

  override close(): Promise<void>
  override close(callback: () => void): void
  override close(callback?: () => void): Promise<void> | void {
    const done = Promise.all([this.direct, ...this.viaProxy.values()].map((d) => d.close())).then(() => undefined)
    if (!callback) return done
    void done.then(callback, callback)
  }

  override destroy(): Promise<void>
  override destroy(error: Error | null): Promise<void>
  override destroy(callback: () => void): void
  override destroy(error: Error | null, callback: () => void): void
  override destroy(errorOrCallback?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
    const error = typeof errorOrCallback === 'function' ? null : (errorOrCallback ?? null)
    const then = typeof errorOrCallback === 'function' ? errorOrCallback : callback
    const done = Promise.all([this.direct, ...this.viaProxy.values()].map((d) => d.destroy(error))).then(() => undefined)
    if (!then) return done
    void done.then(then, then)
  }
}
