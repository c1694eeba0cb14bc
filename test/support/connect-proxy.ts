import {once} from 'node:events'
import {createServer, type IncomingMessage} from 'node:http'
import {connect, type AddressInfo, type Socket} from 'node:net'

/**
 * A forward proxy that tunnels CONNECT requests, as corporate proxies do; it counts them. With
 * `credentials` ("user:password") it answers 407 to a tunnel request without them.
 */
export async function startConnectProxy(credentials?: string): Promise<{url: string; tunnels: string[]; refused: number; upstreamPorts: Set<number>; close(): Promise<void>}> {
  const tunnels: string[] = []
  // The local ports of the proxy's connections to servers: a server seeing one of these was reached through the proxy.
  const upstreamPorts = new Set<number>()
  const state = {refused: 0}
  const wanted = credentials && `Basic ${Buffer.from(credentials).toString('base64')}`
  const sockets = new Set<Socket>()
  const server = createServer((_req, res) => res.writeHead(405).end('CONNECT only'))
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
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
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
