import assert from 'node:assert/strict'
import {once} from 'node:events'
import {createServer} from 'node:http'
import type {AddressInfo} from 'node:net'
import {after, before, describe, it} from 'node:test'
import {Agent} from 'undici'
import {streamRequest, type StreamedResponse} from '../src/lib/net/chunk-stream.js'

describe('streamRequest', () => {
  // A pattern, not a constant: a slab reused too early would show as wrong bytes.
  const body = Buffer.from(Array.from({length: 4 * 1024 * 1024}, (_, i) => (i * 31 + (i >> 16)) & 0xff))
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

  it('keeps handed-out chunks intact until recycled, while another body reuses slabs', async () => {
    const agents = [new Agent({connections: 1}), new Agent({connections: 1})]
    try {
      const [holding, recycling] = await Promise.all(agents.map((a) => streamRequest(a, {origin, path: '/file', method: 'GET'})))
      const held: Buffer[] = []
      const readHolding = (async () => {
        for await (const batch of holding.body) {
          held.push(...batch)
          await new Promise((r) => setImmediate(r))
        }
      })()
      await Promise.all([readHolding, read(recycling)])
      assert.ok(Buffer.concat(held).equals(body), 'chunks never recycled still hold their bytes')
      holding.body.release()
    } finally {
      await Promise.all(agents.map((a) => a.close()))
    }
  })

  it('copies a body through a few reused slabs, not a buffer per read', async () => {
    const res = await streamRequest(agent, {origin, path: '/file', method: 'GET'})
    const slabs = await read(res)
    assert.ok(slabs <= 16, `${slabs} slabs for 4 MiB`)
  })

  /** Reads a body, recycling after each batch and checking each byte; how many slabs it used. */
  async function read(res: StreamedResponse): Promise<number> {
    const slabs = new Set<ArrayBufferLike>()
    let at = 0
    for await (const batch of res.body) {
      for (const chunk of batch) {
        slabs.add(chunk.buffer)
        assert.ok(chunk.equals(body.subarray(at, at + chunk.length)), `wrong bytes at ${at}`)
        at += chunk.length
      }
      res.body.recycle()
      await new Promise((r) => setImmediate(r))
    }
    assert.equal(at, body.length)
    res.body.release()
    return slabs.size
  }

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
