import assert from 'node:assert/strict'
import {once} from 'node:events'
import {createServer} from 'node:http'
import type {AddressInfo} from 'node:net'
import {after, before, describe, it} from 'node:test'
import {Agent} from 'undici'
import {streamRequest} from '../src/lib/net/chunk-stream.js'

describe('streamRequest', () => {
  const body = Buffer.alloc(4 * 1024 * 1024, 7)
  const sockets = new Set<unknown>()
  const server = createServer((req, res) => {
    sockets.add(req.socket)
    if (req.url === '/missing') {
      res.writeHead(404, {'content-length': '9'}).end('not found')
      return
    }
    res.writeHead(200, {'content-length': String(body.length)})
    res.end(body)
  })
  const agent = new Agent({connections: 1})
  let origin = ''
  before(async () => {
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(async () => {
    await agent.close()
    server.close()
  })

  it('delivers the body as batches of the parser\'s chunks, in order and whole', async () => {
    const res = await streamRequest(agent, {origin, path: '/file', method: 'GET'})
    assert.equal(res.statusCode, 200)
    assert.equal(res.headers['content-length'], String(body.length))
    const parts: Buffer[] = []
    for await (const batch of res.body) {
      parts.push(...batch)
      // A slow consumer: the socket is paused meanwhile, and nothing is lost.
      await new Promise((r) => setImmediate(r))
    }
    assert.ok(Buffer.concat(parts).equals(body))
  })

  it('reads an error body to its end so that the connection is kept', async () => {
    sockets.clear()
    const missing = await streamRequest(agent, {origin, path: '/missing', method: 'GET'})
    assert.equal(missing.statusCode, 404)
    await missing.body.dump()
    const next = await streamRequest(agent, {origin, path: '/file', method: 'GET'})
    for await (const _ of next.body) {
      // drain
    }
    assert.equal(sockets.size, 1, 'both requests went over one keep-alive connection')
  })

  it('closes the connection when the consumer stops early, and honours an abort signal', async () => {
    const res = await streamRequest(agent, {origin, path: '/file', method: 'GET'})
    for await (const batch of res.body) {
      assert.ok(batch.length > 0)
      break
    }
    const abort = new AbortController()
    abort.abort(new Error('stop'))
    await assert.rejects(streamRequest(agent, {origin, path: '/file', method: 'GET'}, abort.signal), /stop/)
  })
})
