import {once} from 'node:events'
import {createServer, type IncomingMessage} from 'node:http'
import {connect, type AddressInfo, type Socket} from 'node:net'

/** A forward proxy that tunnels CONNECT requests, as corporate proxies do; it counts them. */
export async function startConnectProxy(): Promise<{url: string; tunnels: string[]; close(): Promise<void>}> {
  const tunnels: string[] = []
  const sockets = new Set<Socket>()
  const server = createServer((_req, res) => res.writeHead(405).end('CONNECT only'))
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    tunnels.push(req.url ?? '')
    const [host, port] = (req.url ?? '').split(':')
    const upstream = connect(Number(port), host, () => {
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
    async close() {
      for (const s of sockets) s.destroy()
      server.close()
    },
  }
}
