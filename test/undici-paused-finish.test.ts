import assert from 'node:assert/strict'
import {once} from 'node:events'
import {createServer, type AddressInfo} from 'node:net'
import {after, describe, it} from 'node:test'
import {closeDispatcher, createDispatcher} from '../src/lib/net/dispatcher.js'
import {get} from '../src/lib/net/request.js'

/**
 * nodejs/undici#5360 (undici 7): a server that sends its answer and closes while the body waits
 * for its reader crashed the process from the socket's 'end' handler. `python3 -m http.server`
 * does exactly that. undici-paused-finish.ts applies upstream's fix.
 */
describe("a server that closes while the body waits for its reader (undici's paused parser)", () => {
  // Exactly the body stream's high-water mark (64 KiB): its last push asks the parser to pause.
  const body = Buffer.alloc(64 * 1024, 0x61)
  const server = createServer((socket) => {
    socket.once('data', () => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`)
      socket.end(body) // the whole answer, then FIN: as HTTP/1.0 servers do
    })
    socket.on('error', () => {})
  })
  after(() => server.close())

  it('reads the whole body afterwards, instead of crashing the process', async () => {
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/model.bin`
    for (let round = 0; round < 3; round++) {
      const dispatcher = createDispatcher({stallTimeoutMs: 10_000})
      try {
        const res = await get(dispatcher, url, {})
        assert.equal(res.status, 200)
        // Not read while the server sends everything and closes: the parser pauses, the FIN comes.
        await new Promise((r) => setTimeout(r, 300))
        let got = 0
        for await (const chunk of res.body) got += (chunk as Buffer).length
        assert.equal(got, body.length)
      } finally {
        await closeDispatcher(dispatcher)
      }
    }
  })
})
