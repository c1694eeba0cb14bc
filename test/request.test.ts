import assert from 'node:assert/strict'
import {once} from 'node:events'
import {createServer, type IncomingMessage, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'
import {after, describe, it} from 'node:test'
import {Agent} from 'undici'
import {get} from '../src/lib/net/request.js'

/** A server that records each request's Authorization and answers by path. */
async function server(route: (path: string, origin: string) => {status: number; location?: string}) {
  const seen: Array<{path: string; authorization?: string}> = []
  const s: Server = createServer((req: IncomingMessage, res) => {
    seen.push({path: req.url ?? '', authorization: req.headers.authorization})
    const {status, location} = route(req.url ?? '', origin)
    res.writeHead(status, location ? {location} : {}).end('x')
  })
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  const origin = `http://127.0.0.1:${(s.address() as AddressInfo).port}`
  after(() => s.close())
  return {origin, seen}
}

const dispatcher = new Agent()
after(() => dispatcher.close())
const basic = `Basic ${Buffer.from('ops:s3cret').toString('base64')}`

describe('get: credentials written in a URL', () => {
  it('follows a redirect within the origin with them, and one to another origin without', async () => {
    const cdn = await server(() => ({status: 200}))
    const hub = await server((path, origin) =>
      path === '/a' ? {status: 302, location: `${origin}/b`} : path === '/b' ? {status: 302, location: `${cdn.origin}/blob`} : {status: 404},
    )
    const res = await get(dispatcher, hub.origin.replace('http://', 'http://ops:s3cret@') + '/a', {})
    await res.body.dump()
    assert.equal(res.status, 200)
    assert.deepEqual(hub.seen, [
      {path: '/a', authorization: basic},
      {path: '/b', authorization: basic},
    ])
    assert.deepEqual(cdn.seen, [{path: '/blob', authorization: undefined}])
  })

  it('leaves an Authorization header given outright in place', async () => {
    const hub = await server(() => ({status: 200}))
    const res = await get(dispatcher, hub.origin.replace('http://', 'http://ops:s3cret@') + '/x', {authorization: 'Bearer tok'})
    await res.body.dump()
    assert.equal(hub.seen[0].authorization, 'Bearer tok')
  })
})
