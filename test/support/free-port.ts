import {once} from 'node:events'
import {createServer, type AddressInfo} from 'node:net'

/** A loopback port nothing listens on now, for servers that must be told their port (nginx, tinyproxy). */
export async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1')
  await once(s, 'listening')
  const {port} = s.address() as AddressInfo
  await new Promise((r) => s.close(r))
  return port
}
