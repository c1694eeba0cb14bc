import {once} from 'node:events'
import {createServer, connect, type AddressInfo, type Socket} from 'node:net'

/**
 * A SOCKS5 proxy (RFC 1928, no authentication, CONNECT only), as `ssh -D` or a desktop proxy
 * offers: it notes each host:port it connects to, as the client named it (a host name is
 * resolved here, at the proxy).
 */
export async function startSocksProxy(): Promise<{url: string; connects: string[]; close(): Promise<void>}> {
  const connects: string[] = []
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    sockets.add(client)
    client.on('close', () => sockets.delete(client))
    client.on('error', () => client.destroy())
    client.once('data', () => {
      client.write(Buffer.from([5, 0])) // version 5, no authentication
      client.once('data', (req: Buffer) => {
        const type = req[3]
        const [host, at] =
          type === 1 ? [[...req.subarray(4, 8)].join('.'), 8] : type === 3 ? [req.subarray(5, 5 + req[4]!).toString(), 5 + req[4]!] : ['', 0]
        if (req[1] !== 1 || !host) return void client.end(Buffer.from([5, 7, 0, 1, 0, 0, 0, 0, 0, 0]))
        const port = req.readUInt16BE(at)
        connects.push(`${host}:${port}`)
        const upstream = connect(port, host, () => {
          client.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]))
          upstream.pipe(client)
          client.pipe(upstream)
        })
        sockets.add(upstream)
        upstream.on('close', () => sockets.delete(upstream))
        upstream.on('error', () => (client.writable && !upstream.remotePort ? client.end(Buffer.from([5, 5, 0, 1, 0, 0, 0, 0, 0, 0])) : client.destroy()))
      })
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `socks5://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connects,
    async close() {
      for (const s of sockets) s.destroy()
      server.close()
    },
  }
}
