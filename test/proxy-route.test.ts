import assert from 'node:assert/strict'
import {once} from 'node:events'
import {createServer, type IncomingMessage} from 'node:http'
import type {AddressInfo, Socket} from 'node:net'
import {after, before, describe, it} from 'node:test'
import {EnvHttpProxyAgent, type buildConnector} from 'undici'
import {closeDispatcher, createDispatcher, rangeClient, rangeRoute, requestBody} from '../src/lib/net/dispatcher.js'
import {forwardingProxy, hideCredentials, proxyConfig, proxyFor, proxyProblem, proxyUrls, readProxyUrl, type ProxyConfig} from '../src/lib/net/proxy-env.js'
import {startConnectProxy} from './support/connect-proxy.js'
import {startMirror, type MirrorServer} from './support/mirror-server.js'

/**
 * Which requests go through a proxy: proxyFor (proxy-env.ts) must choose as undici's
 * EnvHttpProxyAgent does, since the wire client takes the requests it judges direct.
 */
const cases: Array<[string, ProxyConfig, string]> = [
  ['https://hub.example.test/x', {httpsProxy: 'S'}, 'S'],
  ['https://hub.example.test/x', {httpProxy: 'H'}, 'H'],
  ['http://hub.example.test/x', {httpsProxy: 'S'}, 'direct'],
  ['http://hub.example.test/x', {httpProxy: 'H', httpsProxy: 'S'}, 'H'],
  ['https://hub.example.test/x', {httpProxy: 'H', httpsProxy: 'S'}, 'S'],
  ['http://cache.rack.test:8080/x', {httpProxy: 'H', noProxy: 'cache.rack.test'}, 'direct'],
  ['http://cache.rack.test:8080/x', {httpProxy: 'H', noProxy: 'rack.test'}, 'direct'],
  ['http://cache.rack.test:8080/x', {httpProxy: 'H', noProxy: '.rack.test'}, 'direct'],
  ['http://cache.rack.test:8080/x', {httpProxy: 'H', noProxy: '*.rack.test'}, 'direct'],
  ['http://cache.rack.test:8080/x', {httpProxy: 'H', noProxy: 'ack.test'}, 'H'],
  ['http://CACHE.Rack.test:8080/x', {httpProxy: 'H', noProxy: 'cache.RACK.test'}, 'direct'],
  ['http://cache.rack.test:8080/x', {httpProxy: 'H', noProxy: 'cache.rack.test:8080'}, 'direct'],
  ['http://cache.rack.test:8080/x', {httpProxy: 'H', noProxy: 'cache.rack.test:9090'}, 'H'],
  ['http://cache.rack.test/x', {httpProxy: 'H', noProxy: 'cache.rack.test:80'}, 'direct'],
  ['https://cache.rack.test/x', {httpsProxy: 'S', noProxy: 'cache.rack.test:80'}, 'S'],
  ['http://10.0.0.5:8080/x', {httpProxy: 'H', noProxy: 'localhost, 127.0.0.1 10.0.0.5'}, 'direct'],
  ['http://10.0.0.5:8080/x', {httpProxy: 'H', noProxy: '*'}, 'direct'],
  ['http://10.0.0.5:8080/x', {httpProxy: 'H', noProxy: '*,localhost'}, 'H'],
  ['http://[::1]:8080/x', {httpProxy: 'H', noProxy: '[::1]'}, 'direct'],
  ['http://10.0.0.5/x', {httpProxy: 'H', noProxy: ''}, 'H'],
]

/**
 * Beyond undici's reading, as curl (7.86+), Go and requests read NO_PROXY: address ranges, and
 * IPv6 addresses without brackets. Kubernetes clusters set NO_PROXY=10.0.0.0/8,.svc,...
 */
const beyondUndici: Array<[string, ProxyConfig, string]> = [
  ['http://10.0.0.5:8080/x', {httpProxy: 'H', noProxy: 'localhost,10.0.0.0/8,.svc'}, 'direct'],
  ['http://10.1.2.3/x', {httpProxy: 'H', noProxy: '10.0.0.0/16'}, 'H'],
  ['https://192.168.7.9/x', {httpsProxy: 'S', noProxy: '192.168.0.0/16'}, 'direct'],
  ['http://cache.rack.test/x', {httpProxy: 'H', noProxy: '10.0.0.0/8'}, 'H'],
  ['http://[fd00::5]:8080/x', {httpProxy: 'H', noProxy: 'fd00::/8'}, 'direct'],
  ['http://10.0.0.5/x', {httpProxy: 'H', noProxy: 'fd00::/8'}, 'H'],
  ['http://[::1]:8080/x', {httpProxy: 'H', noProxy: '::1'}, 'direct'],
  ['http://10.0.0.5/x', {httpProxy: 'H', noProxy: '10.0.0.0/40'}, 'H'],
  // ALL_PROXY, as curl and requests read it: for either scheme, after the scheme's own.
  ['https://hub.example.test/x', {allProxy: 'A'}, 'A'],
  ['http://hub.example.test/x', {allProxy: 'A'}, 'A'],
  ['https://hub.example.test/x', {httpsProxy: 'S', allProxy: 'A'}, 'S'],
  ['http://hub.example.test/x', {httpsProxy: 'S', allProxy: 'A'}, 'A'],
  ['http://cache.rack.test/x', {allProxy: 'A', noProxy: 'rack.test'}, 'direct'],
]

describe('proxyFor', () => {
  it('picks the proxy, or none, by scheme and NO_PROXY', () => {
    for (const [url, config, want] of [...cases, ...beyondUndici]) assert.equal(proxyFor(url, config) ?? 'direct', want, `${url} with ${JSON.stringify(config)}`)
  })

  it('reads a proxy value as curl does, and says what undici cannot use', () => {
    assert.deepEqual(readProxyUrl('proxy.corp:3128'), {url: 'http://proxy.corp:3128'})
    assert.deepEqual(readProxyUrl(' ops:pw@proxy.corp:3128 '), {url: 'http://ops:pw@proxy.corp:3128'})
    assert.deepEqual(readProxyUrl('HTTPS://proxy.corp'), {url: 'HTTPS://proxy.corp'})
    assert.deepEqual(readProxyUrl('socks5h://127.0.0.1:1080'), {url: 'socks5://127.0.0.1:1080'})
    assert.deepEqual(readProxyUrl('socks4a://p:1080'), {problem: 'socks4a:// proxies are not supported: give an http://, https:// or socks5:// proxy'})
    assert.deepEqual(readProxyUrl('http://'), {problem: 'not a proxy address: write it as http://HOST:PORT'})
    const env = {https_proxy: 'socks4://ops:pw@p:1080', HTTP_PROXY: 'proxy.corp:3128', NO_PROXY: 'localhost'}
    assert.deepEqual(proxyConfig(env), {httpProxy: 'http://proxy.corp:3128', httpsProxy: undefined, noProxy: 'localhost'}, 'what cannot be used is left out')
    assert.equal(proxyProblem(env), 'https_proxy=socks4://ops:***@p:1080: socks4:// proxies are not supported: give an http://, https:// or socks5:// proxy')
    assert.equal(proxyProblem({HTTPS_PROXY: 'socks4://p:1080', https_proxy: 'http://p:3128'}), undefined, 'the lower-case spelling is the one read')
    assert.equal(hideCredentials('ops:pw@proxy.corp:3128'), 'ops:***@proxy.corp:3128')
    assert.deepEqual(proxyUrls({HTTP_PROXY: 'ops:pw@proxy.corp:3128'}), ['http://ops:pw@proxy.corp:3128'], 'with a scheme, so that the password is found and masked')
  })

  it('names the proxy that forwards a request itself: plain http through an http:// proxy, not a tunnel', () => {
    const config = {httpProxy: 'http://squid.corp:3128', httpsProxy: 'http://squid.corp:3128', noProxy: 'cache.rack.test'}
    assert.equal(forwardingProxy('http://mirror.corp/m.gguf', config), 'squid.corp:3128')
    assert.equal(forwardingProxy('https://hub.example.test/x', config), undefined, 'https is tunnelled')
    assert.equal(forwardingProxy('http://cache.rack.test:8080/x', config), undefined, 'NO_PROXY: direct')
    assert.equal(forwardingProxy('http://mirror.corp/m.gguf', {httpProxy: 'https://secure-proxy.corp'}), undefined, 'undici 7 tunnels through an https:// proxy')
  })

  it('chooses as undici\'s EnvHttpProxyAgent does where undici reads NO_PROXY at all', async () => {
    // Two proxies that refuse every tunnel or request (502) after noting it, so that which one undici asked
    // is seen; a direct connection is seen by the connector, which fails it at once.
    const [httpProxy, httpsProxy] = await Promise.all([refusingProxy(), refusingProxy()])
    try {
      for (const [url, config] of cases) {
        const direct: string[] = []
        const connect = ((options: {hostname: string}, callback: (error: Error | null) => void) => {
          direct.push(options.hostname)
          callback(new Error('direct'))
        }) as unknown as buildConnector.connector
        const real = {httpProxy: config.httpProxy ? httpProxy.url : '', httpsProxy: config.httpsProxy ? httpsProxy.url : '', noProxy: config.noProxy ?? ''}
        // As createDispatcher makes it: plain http:// forwarded, not tunnelled.
        const agent = new EnvHttpProxyAgent({...real, connect, proxyTunnel: false})
        const seen = [httpProxy.tunnels.length, httpsProxy.tunnels.length]
        // A direct connection fails; a tunnel is refused; a forwarded request gets the proxy's 502.
        await agent.request({origin: new URL(url).origin, path: '/x', method: 'GET'}).then(
          (res) => (assert.equal(res.statusCode, 502, 'only a proxy answers'), res.body.dump()),
          () => {},
        )
        await agent.destroy()
        const undici = direct.length > 0 ? 'direct' : httpsProxy.tunnels.length > seen[1]! ? 'S' : httpProxy.tunnels.length > seen[0]! ? 'H' : 'none'
        assert.equal(proxyFor(url, config) ?? 'direct', undici, `${url} with ${JSON.stringify(config)}`)
      }
    } finally {
      httpProxy.close()
      httpsProxy.close()
    }
  })
})

/**
 * A proxy that notes each host asked for, by CONNECT or in a request to forward, and refuses it,
 * as a proxy does for a host its rules deny.
 */
async function refusingProxy(): Promise<{url: string; tunnels: string[]; close(): void}> {
  const tunnels: string[] = []
  const server = createServer((req, res) => {
    tunnels.push(URL.canParse(req.url ?? '') ? new URL(req.url!).host : '')
    res.writeHead(502).end()
  })
  server.on('connect', (req: IncomingMessage, socket: Socket) => {
    tunnels.push(req.url ?? '')
    socket.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, tunnels, close: () => server.close()}
}

describe('range requests behind a proxy', () => {
  const env = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'MTUNE_HTTP_CLIENT'] as const
  const saved = Object.fromEntries(env.map((name) => [name, process.env[name]]))
  let proxy: Awaited<ReturnType<typeof startConnectProxy>>
  let mirror: MirrorServer
  before(async () => {
    proxy = await startConnectProxy()
    mirror = await startMirror({content: Buffer.alloc(256 * 1024, 7)})
    for (const name of env) delete process.env[name]
  })
  after(async () => {
    for (const name of env) {
      if (saved[name] === undefined) delete process.env[name]
      else process.env[name] = saved[name]
    }
    await proxy.close()
    await mirror.close()
  })

  it('go through mtune\'s own client to hosts in NO_PROXY, and through undici and the proxy to the rest', async () => {
    process.env.HTTP_PROXY = proxy.url
    process.env.NO_PROXY = '127.0.0.1'
    const dispatcher = createDispatcher({stallTimeoutMs: 5_000})
    const port = new URL(mirror.url).port
    const direct = `http://127.0.0.1:${port}`
    const proxied = `http://localhost:${port}`
    try {
      assert.equal(rangeClient(dispatcher, direct), 'wire')
      assert.equal(rangeClient(dispatcher, proxied), 'undici')
      assert.equal(rangeRoute(dispatcher, `${direct}/model.bin?sig=1`), `range requests to ${direct}: mtune's client, direct`)
      assert.equal(rangeRoute(dispatcher, `${proxied}/model.bin`), `range requests to ${proxied}: undici, via proxy ${new URL(proxy.url).host} (forwarded)`)
      for (const origin of [direct, proxied]) {
        const res = await requestBody(dispatcher, {origin, path: new URL(mirror.url).pathname, headers: {range: 'bytes=0-1023'}})
        assert.equal(res.statusCode, 206)
        for await (const _ of res.body);
      }
      assert.deepEqual(proxy.hosts, [`localhost:${port}`], 'only the host outside NO_PROXY went through the proxy')
      assert.deepEqual(proxy.tunnels, [], 'plain http is forwarded by the proxy, not tunnelled')
    } finally {
      await closeDispatcher(dispatcher)
    }
  })

  it('leave every range request to undici with MTUNE_HTTP_CLIENT=undici', async () => {
    process.env.MTUNE_HTTP_CLIENT = 'undici'
    const dispatcher = createDispatcher({stallTimeoutMs: 5_000})
    try {
      assert.equal(rangeClient(dispatcher, 'http://127.0.0.1:1'), 'undici')
    } finally {
      delete process.env.MTUNE_HTTP_CLIENT
      await closeDispatcher(dispatcher)
    }
  })
})
