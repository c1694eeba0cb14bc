import {once} from 'node:events'
import {createServer, request, type IncomingMessage} from 'node:http'
import {connect, type AddressInfo, type Socket} from 'node:net'

/**
 * A forward proxy as corporate proxies are: it tunnels CONNECT requests (https://) and forwards
 * requests for an absolute http:// URL, and notes both. With `credentials` ("user:password") it
 * answers 407 to either without them. A server it cannot reach gets 502 for a forwarded request
 * and a closed connection for a tunnel (as some proxies do for hosts their rules deny).
 */
export async function startConnectProxy(credentials?: string): Promise<{
  url: string
  /** host:port of each tunnel opened. */
  tunnels: string[]
  /** The absolute URL of each request forwarded. */
  forwarded: string[]
  /** host:port of every server reached either way. */
  readonly hosts: string[]
  refused: number
  upstreamPorts: Set<number>
  close(): Promise<void>
}> {
  const tunnels: string[] = []
  const forwarded: string[] = []
  // The local ports of the proxy's connections to servers: a server seeing one of these was reached through the proxy.
  const upstreamPorts = new Set<number>()
  const state = {refused: 0}
  const wanted = credentials && `Basic ${Buffer.from(credentials).toString('base64')}`
  const sockets = new Set<Socket>()
  const track = (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  }
  const server = createServer((req, res) => {
    if (wanted && req.headers['proxy-authorization'] !== wanted) {
      state.refused++
      res.writeHead(407, {'proxy-authenticate': 'Basic'}).end()
      return
    }
    let target: URL
    try {
      target = new URL(req.url ?? '')
      if (target.protocol !== 'http:') throw new Error('not http')
    } catch {
      res.writeHead(400).end('absolute http:// URL expected')
      return
    }
    forwarded.push(target.href)
    const headers = {...req.headers}
    delete headers['proxy-authorization']
    delete headers['proxy-connection']
    const upstream = request(target, {method: req.method, headers, agent: false}, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    upstream.on('socket', (s) => {
      track(s)
      s.on('connect', () => s.localPort && upstreamPorts.add(s.localPort))
    })
    upstream.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(502).end('cannot reach the server')))
    res.on('close', () => upstream.destroy())
    req.pipe(upstream)
  })
  server.on('connection', track)
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    if (wanted && req.headers['proxy-authorization'] !== wanted) {
      state.refused++
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n')
      return
    }
    tunnels.push(req.url ?? '')
    const [host, port] = (req.url ?? '').split(':')
    const upstream = connect(Number(port), host, () => {
      if (upstream.localPort) upstreamPorts.add(upstream.localPort)
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      upstream.write(head)
      upstream.pipe(client)
      client.pipe(upstream)
    })
    for (const s of [client, upstream]) {
      track(s)
      s.on('error', () => {
        client.destroy()
        upstream.destroy()
      })
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const {port} = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    tunnels,
    forwarded,
    get hosts() {
      return [...tunnels, ...forwarded.map((u) => new URL(u).host)]
    },
    upstreamPorts,
    get refused() {
      return state.refused
    },
    async close() {
      for (const s of sockets) s.destroy()
      server.close()
    },
  }
}
