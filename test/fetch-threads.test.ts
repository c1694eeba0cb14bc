import assert from 'node:assert/strict'
import {once} from 'node:events'
import {readFileSync} from 'node:fs'
import {createServer} from 'node:http'
import type {AddressInfo} from 'node:net'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {MtuneError} from '../src/lib/errors.js'
import {TransferError, onUsedSocket} from '../src/lib/net/retry-policy.js'
import {pull, type PullOptions} from '../src/lib/transfer/engine.js'
import {threadFetcher} from '../src/lib/transfer/fetch-threads.js'
import {EndCell, errorFromWire, errorToWire} from '../src/lib/transfer/fetch-wire.js'
import {isDiskError} from '../src/lib/transfer/range-fetch.js'
import {defaultThreads} from '../src/lib/transfer/thread-count.js'
import {runCli} from './support/cli.js'
import {startCdn} from './support/fake-hubs.js'
import {makeContent, mirrors, sha256} from './support/mirror-server.js'
import {tempDir} from './support/temp.js'

/**
 * The engine with its requests in fetch threads (fetch-threads.ts): the same behaviour as on
 * the main thread, through the thread boundary. Every pull here says, in its debug lines, that
 * its requests ran in the threads.
 */
const MiB = 1024 * 1024
const content = makeContent(16 * MiB, 21)
const digest = sha256(content)
const mirror = mirrors(content, after)
const dir = () => tempDir('threads')

async function run(options: PullOptions) {
  const messages: string[] = []
  const debug: string[] = []
  const result = await pull(
    {connections: 4, chunkSize: 256 * 1024, stallTimeoutMs: 5_000, random: () => 0.5, threads: 2, threadsFrom: 0, ...options},
    {info: (m) => messages.push(m), warn: (m) => messages.push(m), debug: (m) => debug.push(m)},
  )
  assert.ok(debug.some((m) => /requests run in 2 fetch thread/.test(m)), 'the requests ran in fetch threads')
  return {result, messages, debug}
}

async function rejects(promise: Promise<unknown>, exitCode: number, pattern: RegExp): Promise<void> {
  try {
    await promise
  } catch (error) {
    assert.ok(error instanceof MtuneError, `expected an MtuneError, got ${String(error)}`)
    assert.equal(error.exitCode, exitCode, error.message)
    assert.match(error.message, pattern)
    return
  }
  assert.fail('expected the pull to fail')
}

describe('fetch threads', () => {
  it('download over many connections, stealing work to the end, every byte once or nearly', async () => {
    const m = await mirror({perConnectionRate: 4 * MiB})
    const {result, debug} = await run({url: m.url, output: dir(), connections: 8})
    assert.equal(result.sha256, digest)
    assert.ok(result.connections >= 8)
    assert.ok(result.bytesFetched <= content.length * 1.05, `fetched ${result.bytesFetched}`)
    assert.ok(debug.some((x) => /^[\d.]+s conn seg#\d+ /.test(x)))
  })

  it('replace a straggler with a fresh connection', async () => {
    // Pieces that take a connection half a second, so that rates can be compared.
    const m = await mirror({perConnectionRate: 2 * MiB, slowConnections: {every: 3, rate: 32 * 1024, offset: 2}})
    const {result, debug} = await run({url: m.url, output: dir(), connections: 6, chunkSize: MiB})
    assert.equal(result.sha256, digest)
    assert.ok(debug.some((x) => /replacing seg#\d+ \((slow|late)/.test(x)), debug.join('\n'))
  })

  it('retry a stalled connection after the stall timeout, which the threads keep too', async () => {
    const m = await mirror({fault: (r) => (r.index === 1 ? {stall: 100 * 1024} : undefined)})
    const {result} = await run({url: m.url, output: dir(), stallTimeoutMs: 500})
    assert.equal(result.sha256, digest)
    assert.ok(result.retries >= 1)
  })

  it('wait as Retry-After says, and keep every byte through resets and short answers', async () => {
    const m = await mirror({
      fault: (r) => (r.index === 1 ? {status: 429, retryAfter: '1'} : r.index === 2 ? {reset: 64 * 1024} : r.index === 3 ? {truncate: 32 * 1024} : undefined),
    })
    const {result, messages} = await run({url: m.url, output: dir()})
    assert.equal(result.sha256, digest)
    assert.ok(messages.some((x) => /rate limited \(429\).*waiting 1\.0s/.test(x)), messages.join('\n'))
    assert.ok(result.retries >= 2)
  })

  it('hold at the connections a server lets through when it resets the others', async () => {
    const m = await mirror({maxConnections: 4, perConnectionRate: 2 * MiB})
    const {result, messages} = await run({url: m.url, output: dir(), connections: 16})
    assert.equal(result.sha256, digest)
    assert.ok(messages.some((x) => /refuses connections beyond \d+: holding at \d+ connection/.test(x)), messages.join('\n'))
  })

  it('stop at once on 404, and start over when the file changes', async () => {
    const gone = await mirror({fault: (r) => (r.index >= 1 ? {status: 404} : undefined)})
    await rejects(run({url: gone.url, output: dir()}), 3, /\(404\)/)
    const changed = makeContent(16 * MiB, 22)
    const m = await mirror({changeAfter: {requests: 3, content: changed}, perConnectionRate: 8 * MiB})
    const {result, messages} = await run({url: m.url, output: dir()})
    assert.equal(result.sha256, sha256(changed))
    assert.ok(messages.some((x) => /the file changed on the server/.test(x)), messages.join('\n'))
  })

  it('are interrupted cleanly, and the pull resumes where they stopped', async () => {
    const m = await mirror({linkRate: 8 * MiB})
    const out = join(dir(), 'model.bin')
    const abort = new AbortController()
    const pulling = run({url: m.url, output: out, signal: abort.signal})
    while (m.bytesSent < 6 * MiB) await new Promise((r) => setTimeout(r, 20))
    abort.abort()
    await rejects(pulling, 130, /interrupted/)
    m.setOptions({linkRate: undefined})
    const {result} = await run({url: m.url, output: out})
    assert.equal(result.sha256, digest)
    assert.ok(result.resumedBytes >= 4 * MiB, `resumed from ${result.resumedBytes}`)
    assert.ok(m.bytesSent <= content.length * 1.1, `fetched ${m.bytesSent} in all`)
  })

  for (const hideExpiry of [false, true]) {
    it(`renew a signed CDN link that expires mid-file (${hideExpiry ? 'refused with 403 in a thread' : 'before its stated expiry'})`, async () => {
      // 8 MiB at 1 MiB/s per connection over 2 connections: about 4 s, past the link's 1.5 s.
      const cdn = await startCdn({ttlMs: 1500, perConnectionRate: MiB, hideExpiry})
      const blob = makeContent(8 * MiB, 24)
      cdn.add('blob', blob)
      const hub = createServer((_req, res) => res.writeHead(302, {location: cdn.sign('blob')}).end())
      hub.listen(0, '127.0.0.1')
      await once(hub, 'listening')
      try {
        const url = `http://127.0.0.1:${(hub.address() as AddressInfo).port}/resolve/blob`
        const {result, messages} = await run({url, output: dir(), connections: 2, maxConnections: 2, chunkSize: MiB})
        assert.equal(result.sha256, sha256(blob))
        assert.ok(messages.some((x) => (hideExpiry ? /was refused \(403\): resolved it again/ : /is about to expire: resolved it again/).test(x)), messages.join('\n'))
        assert.ok(cdn.mirror.bytesSent <= blob.length * 1.1, 'only missing ranges were fetched after renewal')
      } finally {
        hub.closeAllConnections()
        hub.close()
        await cdn.close()
      }
    })
  }

  it('stay off for small files and under --limit-rate, where one thread is enough', async () => {
    const m = await mirror()
    const debug: string[] = []
    for (const extra of [{threadsFrom: 64 * MiB}, {limitRate: 64 * MiB}]) {
      const result = await pull({url: m.url, output: dir(), connections: 4, threads: 2, ...extra}, {debug: (x) => debug.push(x)})
      assert.equal(result.sha256, digest)
    }
    assert.ok(!debug.some((x) => /fetch thread/.test(x)))
  })
})

describe('the fetch threads\' wire', () => {
  it('carries an error\'s kind, status, wait, socket fact and disk code across', () => {
    const e = new TransferError('throttle', 'rate limited (429)', {status: 429, retryAfterMs: 2_000, cause: {socket: {bytesRead: 10}}})
    const back = errorFromWire(errorToWire(e))
    assert.ok(back instanceof TransferError)
    assert.deepEqual([back.kind, back.message, back.status, back.retryAfterMs, onUsedSocket(back)], ['throttle', 'rate limited (429)', 429, 2_000, true])
    const fresh = errorFromWire(errorToWire(new TransferError('transient', 'reset', {cause: {socket: {bytesRead: 0}}})))
    assert.equal(onUsedSocket(fresh), false)
    const disk = errorFromWire(errorToWire(Object.assign(new Error('ENOSPC: no space left on device'), {code: 'ENOSPC'})))
    assert.ok(isDiskError(disk))
    assert.match(disk.message, /ENOSPC/)
  })

  it('shares a segment\'s end between threads', () => {
    const a = new EndCell()
    const b = new EndCell(a.buffer)
    a.set(300 * 1024 * MiB)
    assert.equal(b.get(), 300 * 1024 * MiB, 'ends past 4 GiB too')
  })

  it('closes a thread\'s handle on a part file it was never told exists, without waiting for it', async () => {
    const m = await mirror({perConnectionRate: 256 * 1024})
    const partPath = join(dir(), 'never-opened.part')
    // Its own stall timeout: a pool of its own, not one another test uses.
    const fetcher = threadFetcher(1, 4_321, partPath)
    const stop = new AbortController()
    const io = {part: undefined as never, end: () => MiB, firstByte() {}, received() {}, writing() {}, written() {}}
    const fetching = fetcher.fetch({target: m.url, headers: {}, size: content.length, from: 0, requestEnd: MiB}, io, stop.signal, new EndCell(), 0)
    // The thread's first write waits for the part file to be said to exist, which never comes:
    // stopped, the request waits on that write, until the close says there is no file.
    const ended = fetching.then(
      () => 'ended',
      () => 'ended',
    )
    await new Promise((resolve) => setTimeout(resolve, 300))
    stop.abort()
    await fetcher.close()
    assert.equal(await ended, 'ended')
  })

  it('defaults to two threads per file, within one per 4 cores, none below 4 cores', () => {
    assert.deepEqual([1, 2, 3, 4, 8, 16, 64, 256].map((n) => defaultThreads(n)), [0, 0, 0, 2, 2, 2, 2, 2], 'one file: two threads feed its hash')
    assert.deepEqual([1, 2, 3, 4, 8, 16, 64, 256].map((n) => defaultThreads(n, 4)), [0, 0, 0, 2, 2, 4, 8, 8], 'four files at once: within one thread per 4 cores')
  })
})

describe('mtune pull --threads (CLI)', () => {
  const big = makeContent(64 * MiB, 23)
  const bigMirror = mirrors(big, after)

  it('pulls a big file through fetch threads, verified, and exits', async () => {
    const m = await bigMirror()
    const out = join(dir(), 'model.bin')
    const r = await runCli(['pull', m.url, '-o', out, '--threads', '2', '--sha256', sha256(big), '--debug'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /requests run in 2 fetch thread/)
    assert.equal(sha256(readFileSync(out)), sha256(big))
  })
})
