import assert from 'node:assert/strict'
import {once} from 'node:events'
import net, {type AddressInfo, type Socket} from 'node:net'
import {after, before, describe, it} from 'node:test'
import {setTimeout as sleep} from 'node:timers/promises'
import {createDispatcher, closeDispatcher, requestBody} from '../src/lib/net/dispatcher.js'
import {classifyNetworkError, onUsedSocket} from '../src/lib/net/retry-policy.js'
import {WireClient, WireUnsupported} from '../src/lib/net/wire.js'
import {BadResponse, parseHead, requestHead} from '../src/lib/net/wire-head.js'
import type {ChunkStream} from '../src/lib/net/chunk-stream.js'

describe('wire-head', () => {
  it('reads the status, headers (repeated ones joined) and the body framing', () => {
    const head = parseHead('HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\nX-A: 1\r\nx-a: 2\r\nContent-Range: bytes 0-9/20\r\n\r\n')
    assert.equal(head.statusCode, 206)
    assert.equal(head.headers['x-a'], '1, 2')
    assert.equal(head.headers['content-range'], 'bytes 0-9/20')
    assert.deepEqual(head.body, {length: 10})
    assert.equal(head.keepAlive, true)
  })

  it('leaves chunked bodies and bodies that end with the connection to undici', () => {
    assert.ok('unsupported' in parseHead('HTTP/1.1 206 OK\r\nTransfer-Encoding: chunked\r\n\r\n').body)
    assert.ok('unsupported' in parseHead('HTTP/1.0 206 OK\r\n\r\n').body)
    assert.deepEqual(parseHead('HTTP/1.1 204 No Content\r\n\r\n').body, {length: 0})
  })

  it('keeps a connection only where HTTP/1.1 or keep-alive says so', () => {
    assert.equal(parseHead('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n').keepAlive, false)
    assert.equal(parseHead('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').keepAlive, false)
    assert.equal(parseHead('HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n').keepAlive, true)
  })

  it('refuses what is not HTTP/1.x, a malformed header and lengths that disagree', () => {
    assert.throws(() => parseHead('SSH-2.0-OpenSSH\r\n\r\n'), BadResponse)
    assert.throws(() => parseHead('HTTP/1.1 200 OK\r\nno colon here\r\n\r\n'), BadResponse)
    assert.throws(() => parseHead('HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n'), BadResponse)
    assert.throws(() => parseHead('HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n'), BadResponse)
    assert.deepEqual(parseHead('HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n').body, {length: 5})
  })

  it('writes a GET head and refuses a header that would split it', () => {
    const head = requestHead('h:1', '/a?b', {range: 'bytes=0-1', Host: 'evil', connection: 'close'})
    assert.equal(head, 'GET /a?b HTTP/1.1\r\nhost: h:1\r\nrange: bytes=0-1\r\nconnection: keep-alive\r\n\r\n')
    assert.throws(() => requestHead('h', '/', {authorization: 'x\r\ninjected: 1'}), /line break/)
  })
})

/** A raw server: `answer` writes whatever bytes it likes for each request head it reads. */
async function rawServer(answer: (socket: Socket, head: string, index: number) => void | Promise<void>) {
  const state = {connections: 0, requests: [] as string[]}
  const sockets = new Set<Socket>()
  const server = net.createServer((socket) => {
    state.connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let pending = ''
    socket.on('data', (data) => {
      pending += data.toString('latin1')
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        const head = pending.slice(0, end + 4)
        pending = pending.slice(end + 4)
        state.requests.push(head)
        void answer(socket, head, state.requests.length - 1)
      }
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    state,
    close: () => {
      for (const s of sockets) s.destroy()
      server.close()
    },
  }
}

// A pattern, not a constant: bytes from the wrong place in a slab would show.
const DATA = Buffer.from(Array.from({length: 3 * 1024 * 1024 + 777}, (_, i) => (i * 31 + (i >> 13)) & 0xff))

/** Read a body the way range-fetch does: batches, written (here: copied) then recycled. */
async function readAll(body: ChunkStream, slow = false): Promise<Buffer> {
  const parts: Buffer[] = []
  try {
    for await (const batch of body) {
      for (const chunk of batch) parts.push(Buffer.from(chunk))
      if (slow) await sleep(1)
      body.recycle()
    }
  } finally {
    body.release()
  }
  return Buffer.concat(parts)
}

/** GET [from, to) of the test file through `client`, read whole. */
async function getRange(client: WireClient, origin: string, from: number, to: number): Promise<Buffer> {
  const res = await client.request({origin, path: '/f', headers: {range: `bytes=${from}-${to - 1}`}})
  return readAll(res.body)
}

/** GET each of `ranges` in turn through `client`, each read whole and checked against the file. */
async function getRangesIntact(client: WireClient, origin: string, ranges: Array<[number, number]>): Promise<void> {
  for (const [from, to] of ranges) assert.ok((await getRange(client, origin, from, to)).equals(DATA.subarray(from, to)), `bytes ${from}-${to - 1}`)
}

/** The error `promise` fails with (a test failure if it succeeds). */
function failure(promise: Promise<unknown>, what: string): Promise<unknown> {
  return promise.then(
    () => assert.fail(what),
    (e: unknown) => e,
  )
}

function rangeOf(head: string): [number, number] {
  const m = /range: bytes=(\d+)-(\d+)/i.exec(head)!
  return [Number(m[1]), Number(m[2]) + 1]
}

function partial(socket: Socket, head: string, extra = ''): Buffer {
  const [from, to] = rangeOf(head)
  socket.write(`HTTP/1.1 206 Partial Content\r\ncontent-range: bytes ${from}-${to - 1}/${DATA.length}\r\ncontent-length: ${to - from}\r\n${extra}\r\n`)
  return DATA.subarray(from, to)
}

describe('WireClient', () => {
  const client = new WireClient({stallTimeoutMs: 2_000, connectTimeoutMs: 2_000})
  after(() => client.close())

  it('delivers a body written in pieces of every size, whole and in order, to a slow reader', async () => {
    const server = await rawServer(async (socket, head) => {
      const body = partial(socket, head)
      // Pieces of 1 B to 200 KiB, so reads straddle slabs and the reader falls behind.
      for (let at = 0, i = 0; at < body.length; i++) {
        const n = [1, 4096, 65536, 200_000, 333][i % 5]
        socket.write(body.subarray(at, at + n))
        at += n
        if (i % 7 === 0) await sleep(1)
      }
    })
    try {
      const res = await client.request({origin: server.origin, path: '/f', headers: {range: `bytes=5-${DATA.length - 1}`}})
      assert.equal(res.statusCode, 206)
      assert.equal(res.headers['content-range'], `bytes 5-${DATA.length - 1}/${DATA.length}`)
      assert.ok((await readAll(res.body, true)).equals(DATA.subarray(5)))
    } finally {
      server.close()
    }
  })

  it('keeps the connection for the next request, and the head may come a byte at a time', async () => {
    const server = await rawServer(async (socket, head) => {
      const [from, to] = rangeOf(head)
      const text = `HTTP/1.1 206 Partial Content\r\ncontent-length: ${to - from}\r\n\r\n`
      for (const ch of text) {
        socket.write(ch)
        await sleep(0)
      }
      socket.write(DATA.subarray(from, to))
    })
    try {
      await getRangesIntact(client, server.origin, [
        [0, 100_000],
        [100_000, 2_000_000],
        [7, 8],
      ])
      assert.equal(server.state.connections, 1)
    } finally {
      server.close()
    }
  })

  it('skips 100 Continue, keeps only Content-Length bytes of a server that sends more, and does not reuse it', async () => {
    const server = await rawServer((socket, head) => {
      socket.write('HTTP/1.1 100 Continue\r\n\r\n')
      const body = partial(socket, head)
      // Past the body: the next bytes of the file, as a server that rounds its writes up sends them.
      const [, to] = rangeOf(head)
      socket.write(Buffer.concat([body, DATA.subarray(to, to + 477)]))
    })
    try {
      await getRangesIntact(client, server.origin, [
        [1000, 70_000],
        [300_000, 300_547],
      ])
      assert.equal(server.state.connections, 2)
    } finally {
      server.close()
    }
  })

  it('fails a body cut short as the retry policy expects: transient, on a socket that had read', async () => {
    const server = await rawServer((socket, head) => {
      const body = partial(socket, head)
      socket.end(body.subarray(0, 1000))
    })
    try {
      const res = await client.request({origin: server.origin, path: '/f', headers: {range: 'bytes=0-99999'}})
      const error = await failure(readAll(res.body), 'the body was not complete')
      assert.equal(classifyNetworkError(error).kind, 'transient')
      assert.equal(onUsedSocket(error), true)
    } finally {
      server.close()
    }
  })

  it('fails a stalled response with the stall message, and a refused connection as refused', async () => {
    const quick = new WireClient({stallTimeoutMs: 300, connectTimeoutMs: 2_000})
    const server = await rawServer((socket, head) => {
      const body = partial(socket, head)
      socket.write(body.subarray(0, 10))
    })
    try {
      const res = await quick.request({origin: server.origin, path: '/f', headers: {range: 'bytes=0-99'}})
      const error = await failure(readAll(res.body), 'a stalled body completed')
      assert.match(classifyNetworkError(error).message, /stalled/)
    } finally {
      server.close()
    }
    const closed = net.createServer().listen(0, '127.0.0.1')
    await once(closed, 'listening')
    const port = (closed.address() as AddressInfo).port
    closed.close()
    await once(closed, 'close')
    const error = await failure(quick.request({origin: `http://127.0.0.1:${port}`, path: '/', headers: {}}), 'connected to a closed port')
    assert.match(classifyNetworkError(error).message, /connection refused/)
  })

  it('does not count the time it waits for a slow reader as a stall', async () => {
    const quick = new WireClient({stallTimeoutMs: 200, connectTimeoutMs: 2_000})
    const server = await rawServer((socket, head) => {
      socket.write(partial(socket, head))
    })
    try {
      const res = await quick.request({origin: server.origin, path: '/f', headers: {range: `bytes=0-${2 * 1024 * 1024 - 1}`}})
      const parts: Buffer[] = []
      for await (const batch of res.body) {
        for (const chunk of batch) parts.push(Buffer.from(chunk))
        res.body.recycle()
        // Longer than the stall timeout, with far more than the high-water mark waiting.
        if (parts.length === 1) await sleep(600)
      }
      res.body.release()
      assert.ok(Buffer.concat(parts).equals(DATA.subarray(0, 2 * 1024 * 1024)))
    } finally {
      quick.close()
      server.close()
    }
  })

  it('stops when its signal is aborted, and refuses a chunked 206 with WireUnsupported', async () => {
    const server = await rawServer((socket, head) => {
      if (head.includes('/chunked')) {
        socket.write('HTTP/1.1 206 Partial Content\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n')
        return
      }
      const body = partial(socket, head)
      socket.write(body.subarray(0, 5000))
    })
    try {
      const abort = new AbortController()
      const res = await client.request({origin: server.origin, path: '/f', headers: {range: 'bytes=0-99999'}}, abort.signal)
      const reading = readAll(res.body)
      abort.abort(new Error('stopped'))
      await assert.rejects(reading, /stopped/)
      await assert.rejects(client.request({origin: server.origin, path: '/chunked', headers: {range: 'bytes=0-4'}}), WireUnsupported)
    } finally {
      server.close()
    }
  })
})

describe('requestBody (dispatcher.ts)', () => {
  let server: Awaited<ReturnType<typeof rawServer>>
  before(async () => {
    server = await rawServer((socket, head) => {
      const [from, to] = rangeOf(head)
      const body = DATA.subarray(from, to)
      // Chunked, as some servers and proxies answer a range: the wire client leaves it to undici.
      socket.write(`HTTP/1.1 206 Partial Content\r\ncontent-range: bytes ${from}-${to - 1}/${DATA.length}\r\ntransfer-encoding: chunked\r\n\r\n`)
      socket.write(`${body.length.toString(16)}\r\n`)
      socket.write(body)
      socket.write('\r\n0\r\n\r\n')
    })
  })
  after(() => server.close())

  it('asks undici again where the wire client cannot frame the answer, and from then on only undici', async () => {
    const dispatcher = createDispatcher({stallTimeoutMs: 5_000})
    try {
      for (const [from, to] of [
        [0, 1000],
        [5000, 400_000],
      ]) {
        const res = await requestBody(dispatcher, {origin: server.origin, path: '/f', headers: {range: `bytes=${from}-${to - 1}`}})
        assert.equal(res.statusCode, 206)
        assert.ok((await readAll(res.body)).equals(DATA.subarray(from, to)))
      }
      // The first range twice (the wire client, then undici), the second once.
      assert.equal(server.state.requests.length, 3)
    } finally {
      await closeDispatcher(dispatcher)
    }
  })
})
