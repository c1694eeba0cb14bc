import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {MtuneError} from '../src/lib/errors.js'
import {existsSaid, pull, type PullOptions} from '../src/lib/transfer/engine.js'
import type {Progress} from '../src/lib/transfer/pull-types.js'
import {openPartFile, type OpenPartFile} from '../src/lib/transfer/part-file.js'
import {makeContent, mirrors, sha256} from './support/mirror-server.js'
import {tempDir} from './support/temp.js'

const MiB = 1024 * 1024
const content = makeContent(16 * MiB, 7)
const digest = sha256(content)
const mirror = mirrors(content, after)

const dir = () => tempDir('engine')

async function run(options: PullOptions) {
  const messages: string[] = []
  const result = await pull(
    {connections: 4, chunkSize: 256 * 1024, stallTimeoutMs: 5_000, random: () => 0.5, ...options},
    {info: (m) => messages.push(m), warn: (m) => messages.push(m)},
  )
  return {result, messages}
}

/** A part file on a disk that fills up (ENOSPC) once `limit` bytes are written to it. */
function diskFullAfter(limit: number): OpenPartFile {
  let written = 0
  return async (path, size, fresh) => {
    const part = await openPartFile(path, size, fresh)
    return {
      ...part,
      async write(buffers, length, position) {
        if (written + length > limit) throw Object.assign(new Error('ENOSPC: no space left on device'), {code: 'ENOSPC'})
        written += length
        await part.write(buffers, length, position)
      },
    }
  }
}

async function rejects(promise: Promise<unknown>, exitCode: number, pattern: RegExp): Promise<MtuneError> {
  try {
    await promise
  } catch (error) {
    assert.ok(error instanceof MtuneError, `expected an MtuneError, got ${String(error)}`)
    assert.equal(error.exitCode, exitCode, error.message)
    assert.match(error.message, pattern)
    assert.doesNotMatch(error.message, /\n/, 'one line')
    return error
  }
  assert.fail('expected the pull to fail')
}

describe('pull engine', () => {
  it('downloads over several connections into place and reports the sha256', async () => {
    const m = await mirror()
    const out = dir()
    const {result} = await run({url: m.url, output: out})
    assert.equal(result.path, join(out, 'model.bin'))
    assert.equal(result.sha256, digest)
    assert.equal(result.size, content.length)
    assert.ok(readFileSync(result.path).equals(content))
    assert.ok(!existsSync(`${result.path}.part`) && !existsSync(`${result.path}.part.journal`), 'no leftovers')
    assert.ok(result.connections > 1)
    assert.ok(m.requests.every((r) => r.range), 'every request is ranged')
    assert.ok(m.bytesSent <= content.length * 1.05, `fetched ${m.bytesSent}`)
  })

  it('verifies an expected sha256 and names the file by Content-Disposition in a directory', async () => {
    const m = await mirror({contentDisposition: 'attachment; filename="weights.safetensors"'})
    const out = dir()
    const {result} = await run({url: m.url, output: out, sha256: `sha256:${digest.toUpperCase()}`})
    assert.equal(result.path, join(out, 'weights.safetensors'))
    assert.equal(result.verified, true)
    // A server's name for a hidden file (-o ~/ and .bash_profile) is saved visible.
    const hidden = await mirror({contentDisposition: 'attachment; filename="../.bash_profile"'})
    const home = dir()
    assert.equal((await run({url: hidden.url, output: home})).result.path, join(home, 'bash_profile'))
  })

  it('grows the connection count while a per-connection cap limits throughput', async () => {
    const m = await mirror({perConnectionRate: 2 * MiB})
    const {result} = await run({url: m.url, output: dir(), connections: 2, maxConnections: 12})
    assert.equal(result.sha256, digest)
    assert.ok(result.connections > 2, `grew beyond the initial 2 (peak ${result.connections})`)
    assert.ok(result.connections <= 12)
  })

  it('honours a link cap, a first-byte delay and --limit-rate', async () => {
    const m = await mirror({linkRate: 32 * MiB, firstByteDelayMs: 80})
    const started = performance.now()
    const {result} = await run({url: m.url, output: dir(), limitRate: 16 * MiB})
    assert.equal(result.sha256, digest)
    // 16 MiB at 16 MiB/s with a 1/4 s burst cannot take less than ~0.75 s.
    assert.ok(performance.now() - started >= 700, 'the rate limit held')
  })

  it('does not add connections while --limit-rate is what holds the pull back', async () => {
    const m = await mirror()
    const {result} = await run({url: m.url, output: dir(), limitRate: 8 * MiB, connections: 4, maxConnections: 32})
    assert.equal(result.sha256, digest)
    // Without the check, 4 doubled at the first byte and grew on the cap's bursts (peak 8-10);
    // more only cost the server. One more may run for a moment, racing another for the last piece.
    assert.ok(result.connections <= 5, `stayed at 4 (peak ${result.connections})`)
  })

  it('still grows under a --limit-rate that the path does not reach', async () => {
    const m = await mirror({perConnectionRate: 2 * MiB})
    const {result} = await run({url: m.url, output: dir(), limitRate: 64 * MiB, connections: 2, maxConnections: 12})
    assert.equal(result.sha256, digest)
    assert.ok(result.connections > 2, `grew beyond the initial 2 (peak ${result.connections})`)
  })

  it('follows a redirect once, then asks the final URL directly', async () => {
    const m = await mirror()
    const {result} = await run({url: m.redirectUrl, output: join(dir(), 'x.bin')})
    assert.equal(result.sha256, digest)
    assert.ok(m.requests.every((r) => r.path === '/file/model.bin'))
  })

  for (const [name, fault] of [
    ['reset', {reset: 100 * 1024}],
    ['truncated body', {truncate: 100 * 1024}],
  ] as const) {
    it(`retries a ${name} and keeps what arrived`, async () => {
      const m = await mirror({fault: (r) => (r.index === 1 || r.index === 3 ? fault : undefined)})
      const {result} = await run({url: m.url, output: dir()})
      assert.equal(result.sha256, digest)
      assert.ok(result.retries >= 2, `retries ${result.retries}`)
      assert.ok(m.bytesSent <= content.length * 1.1, `re-fetched little: ${m.bytesSent}`)
    })
  }

  it('retries a stalled connection after the stall timeout', async () => {
    const m = await mirror({fault: (r) => (r.index === 1 ? {stall: 100 * 1024} : undefined)})
    const {result} = await run({url: m.url, output: dir(), stallTimeoutMs: 500})
    assert.equal(result.sha256, digest)
    assert.ok(result.retries >= 1)
  })

  it('waits as Retry-After says on 429 and 503, with fewer connections', async () => {
    const m = await mirror({
      fault: (r) => (r.index >= 1 && r.index <= 3 ? {status: r.index === 2 ? 503 : 429, retryAfter: '1'} : undefined),
    })
    const started = performance.now()
    const {result, messages} = await run({url: m.url, output: dir()})
    assert.equal(result.sha256, digest)
    assert.ok(performance.now() - started >= 900, 'waited for Retry-After')
    assert.ok(messages.some((x) => /rate limited \(429\).*waiting 1\.0s/.test(x)), messages.join('\n'))
  })

  it("waits as a RateLimit header says when there is no Retry-After (the Hub's 429s), at the first request and later", async () => {
    const rateLimit = '"resolvers";r=0;t=2'
    const m = await mirror({fault: (r) => (r.index === 0 || r.index === 2 ? {status: 429, rateLimit} : undefined)})
    const started = performance.now()
    const {result, messages} = await run({url: m.url, output: dir()})
    assert.equal(result.sha256, digest)
    assert.ok(performance.now() - started >= 3_800, 'waited twice for the reset it named')
    assert.ok(messages.some((x) => /rate limited \(429\).*; retrying in 2\.0s/.test(x)), messages.join('\n'))
    assert.ok(messages.some((x) => /rate limited \(429\).*waiting 2\.0s/.test(x)), messages.join('\n'))
  })

  it('holds at the connections a server lets through when it resets the ones beyond its limit', async () => {
    // 4 connections at 2 MiB/s: the pull takes about two seconds, in which a client that kept
    // opening connections beyond the limit would have dozens reset.
    const m = await mirror({maxConnections: 4, perConnectionRate: 2 * MiB})
    const {result, messages} = await run({url: m.url, output: dir(), connections: 16})
    assert.equal(result.sha256, digest)
    // Usually 4; on a loaded machine the mirror may still count a socket that is closing.
    const held = messages.map((x) => /the server refuses connections beyond (\d+): holding at (\d+) connection/.exec(x)).find(Boolean)
    assert.ok(held && Number(held[1]) <= 4 && held[1] === held[2], messages.join('\n'))
    assert.ok(m.refused <= 24, `${m.refused} connections reset`)
  })

  it('gives up on a server that keeps failing, without progress, with a clear error', async () => {
    const m = await mirror({fault: (r) => (r.index >= 1 ? {status: 500} : undefined)})
    await rejects(run({url: m.url, output: dir(), maxRetries: 3, connections: 2}), 3, /giving up after \d+ failed attempts.*HTTP 500.*resume/)
  })

  it('stops at once on 404, 410 and auth failures', async () => {
    for (const status of [404, 410, 401]) {
      const m = await mirror({fault: () => ({status})})
      await rejects(run({url: m.url, output: dir()}), 3, new RegExp(`\\(${status}\\)`))
      assert.equal(m.requests.length, 1, `no retry after ${status}`)
    }
  })

  it('falls back to one stream, and says so, when the server ignores Range', async () => {
    const m = await mirror({ignoreRange: true})
    const {result, messages} = await run({url: m.url, output: dir()})
    assert.equal(result.sha256, digest)
    assert.equal(result.connections, 1)
    assert.equal(m.requests.length, 1)
    assert.ok(messages.some((x) => /does not support ranges: downloading over one connection/.test(x)))
  })

  it('streams a file of unknown size over one connection', async () => {
    const m = await mirror({noLength: true, etag: false, lastModified: false})
    const {result, messages} = await run({url: m.url, output: dir()})
    assert.equal(result.sha256, digest)
    assert.equal(result.size, content.length)
    assert.ok(messages.some((x) => /the server gives no size: downloading over one connection/.test(x)), messages.join('\n'))
  })

  it('starts over, and never stitches versions, when the file changes mid-download', async () => {
    const changed = makeContent(16 * MiB, 8)
    const m = await mirror({changeAfter: {requests: 3, content: changed}, perConnectionRate: 8 * MiB})
    const {result, messages} = await run({url: m.url, output: dir()})
    assert.equal(result.sha256, sha256(changed))
    assert.ok(messages.some((x) => /the file changed on the server/.test(x)), messages.join('\n'))
    assert.ok(m.requests.filter((r) => r.ifRange).length >= 2, 'segment requests carry If-Range')
  })

  it('takes copies behind a load balancer that differ only in their dates as one file, and resumes them so', async () => {
    // Each connection reaches another backend, whose ETag and Last-Modified are its own: to
    // If-Range that reads as a change on every other connection.
    const m = await mirror({backends: [content, Buffer.from(content)], linkRate: 4 * MiB})
    const out = join(dir(), 'model.bin')
    const abort = new AbortController()
    const messages: string[] = []
    const pulling = pull({url: m.url, output: out, connections: 4, chunkSize: 256 * 1024, signal: abort.signal, random: () => 0.5}, {info: (x) => messages.push(x), warn: (x) => messages.push(x)})
    while (m.bytesSent < 8 * MiB) await new Promise((r) => setTimeout(r, 20))
    abort.abort()
    await rejects(pulling, 130, /^interrupted/)
    assert.ok(messages.some((x) => /^the server answers for this file under 2 ETags\/Last-Modified \("b[01]-v0-\d+", "b[01]-v0-\d+"\) with the same bytes, as load-balanced servers .*no digest was given to check it at the end \(--sha256\)$/.test(x)), messages.join('\n'))
    assert.ok(!messages.some((x) => /starting over/.test(x)), messages.join('\n'))
    // The next run knows, from the journal, and keeps what is on disk whichever backend it reaches first.
    m.setOptions({linkRate: 64 * MiB})
    const {result, messages: again} = await run({url: m.url, output: out})
    assert.equal(result.sha256, digest)
    assert.ok(result.resumedBytes >= 4 * MiB, `resumed ${result.resumedBytes}`)
    assert.ok(again.some((x) => /^the last run found this server's copies of the file under more than one ETag\/Last-Modified/.test(x)), again.join('\n'))
    assert.ok(!again.some((x) => /starting over|changed/.test(x)), again.join('\n'))
    // In one run, what the attempt before the check fetched is this run's: not said or counted as a resume.
    const {result: fresh, messages: once} = await run({url: m.url, output: join(dir(), 'model.bin')})
    assert.equal(fresh.sha256, digest)
    assert.equal(fresh.resumedBytes, 0)
    assert.ok(fresh.bytesFetched >= content.length, `fetched ${fresh.bytesFetched}`)
    assert.ok(!once.some((x) => /resuming/.test(x)), once.join('\n'))
  })

  it('never stitches copies behind a load balancer that hold other bytes: says so and stops', async () => {
    // A new version rolling out: one backend has it, the other not yet, at the same size.
    const edited = Buffer.from(content)
    edited.fill(7, 0, 100)
    // A balancer that takes turns per request: every attempt meets both copies.
    const m = await mirror({backends: [content, edited], balance: 'request'})
    const out = join(dir(), 'model.bin')
    await rejects(run({url: m.url, output: out}), 4, /^the file kept changing on the server \(.*; its copies answer with other bytes under "b[01]-v0-\d+", "b[01]-v0-\d+": a new version rolling out behind a load balancer, or backends that disagree\); try again later$/)
    assert.ok(!existsSync(out), 'nothing put in place')
    // Copies that differ only at the end (an append, a copy cut short and padded) are told apart too.
    const tail = Buffer.from(content)
    tail.fill(7, tail.length - 100)
    const t = await mirror({backends: [content, tail], balance: 'request'})
    await rejects(run({url: t.url, output: join(dir(), 'model.bin')}), 4, /its copies answer with other bytes/)
  })

  it('behind a balancer that keeps each connection on one backend, stops or gets one whole copy, never a mix', async () => {
    // Connections whose backend sent the whole file to an If-Range request are closed; the ones
    // kept for the next attempt can all reach one backend, which then serves the file alone, under
    // one ETag checked on every request. Which happens depends on which connections survive.
    const tail = Buffer.from(content)
    tail.fill(7, tail.length - 100)
    for (let attempt = 0; attempt < 3; attempt++) {
      const t = await mirror({backends: [content, tail]})
      const out = join(dir(), 'model.bin')
      const messages: string[] = []
      try {
        const result = await pull({connections: 4, chunkSize: 256 * 1024, random: () => 0.5, url: t.url, output: out}, {info: (x) => messages.push(x), warn: (x) => messages.push(x)})
        assert.ok([digest, sha256(tail)].includes(result.sha256), `a mix of the copies: ${result.sha256}`)
        assert.equal(sha256(readFileSync(out)), result.sha256)
        assert.ok(messages.some((x) => /^the file changed on the server .*: starting over$/.test(x)), messages.join('\n'))
      } catch (error) {
        assert.ok(error instanceof MtuneError && /its copies answer with other bytes/.test(error.message), String(error))
        assert.ok(!existsSync(out), 'nothing put in place')
      }
    }
  })

  it('retries, keeping every byte, when a server ignores Range now and then but the file is the same', async () => {
    // Every 4th request gets a 200 with the whole file and the same ETag: an edge that ignored
    // the range, not a new version (RFC 9110 13.1.5).
    const m = await mirror({fault: (r) => (r.index > 0 && r.index % 4 === 0 ? {ignoreRange: true} : undefined)})
    const {result, messages} = await run({url: m.url, output: dir()})
    assert.equal(result.sha256, digest)
    assert.ok(result.retries >= 1, 'the ignored ranges were retried')
    assert.ok(!messages.some((x) => /changed|starting over/.test(x)), messages.join('\n'))
    assert.equal(m.requests.filter((r) => r.range === 'bytes=0-4194303').length, 1, 'never started over')
  })

  it('starts over cleanly when the file changes while the part file is still being opened', async () => {
    const changed = makeContent(16 * MiB, 9)
    const m = await mirror({changeAfter: {requests: 2, content: changed}})
    let slow = true
    const slowDisk: OpenPartFile = async (path, size, fresh) => {
      // The first attempt's disk answers late: the changed file is seen before the part file is open.
      if (slow) await new Promise((r) => setTimeout(r, 1_000))
      slow = false
      return openPartFile(path, size, fresh)
    }
    const {result, messages} = await run({url: m.url, output: dir(), openPartFile: slowDisk})
    assert.equal(result.sha256, sha256(changed))
    assert.ok(messages.some((x) => /the file changed on the server/.test(x)), messages.join('\n'))
  })

  it('rejects a response whose Content-Range is not the range asked for', async () => {
    const m = await mirror({fault: (r) => (r.index === 2 ? {badContentRange: true} : undefined)})
    const {result} = await run({url: m.url, output: dir()})
    assert.equal(result.sha256, digest, 'nothing was written at the wrong offset')
    assert.ok(result.retries >= 1)
  })

  it('takes a 206 for only the start of the range asked (a server that caps its answers), and asks for the rest', async () => {
    const m = await mirror({maxRange: 1 * MiB + 12_345})
    const {result} = await run({url: m.url, output: dir(), chunkSize: 4 * MiB, connections: 2, maxConnections: 2})
    assert.equal(result.sha256, digest)
    assert.equal(result.retries, 0, 'a short answer is not a failure')
    const asked = m.requests.filter((r) => r.range).map((r) => Number(/^bytes=(\d+)-/.exec(r.range!)![1]))
    assert.ok(asked.some((from) => from % (1 * MiB + 12_345) === 0 && from > 0), 'a request began where a capped answer ended')
  })

  it('uses a good mirror beside the primary and drops one that serves other bytes', async () => {
    const primary = await mirror({perConnectionRate: 4 * MiB})
    const good = await mirror({perConnectionRate: 4 * MiB})
    const bad = await mirror({content: makeContent(16 * MiB, 99)})
    const missing = await mirror({fault: () => ({status: 404})})
    const {result, messages} = await run({url: primary.url, mirrors: [good.url, bad.url, missing.url, primary.url, good.url], output: dir()})
    assert.equal(result.sha256, digest)
    assert.ok(good.requests.length > 1, 'the good mirror served ranges')
    assert.ok(messages.some((x) => x.includes(`not using mirror ${bad.url}: it serves different bytes`)), messages.join('\n'))
    assert.ok(messages.some((x) => x.includes(`not using mirror ${missing.url}`)))
    assert.deepEqual(
      result.mirrors.map((x) => [x.url, x.used]).sort(),
      [
        [bad.url, false],
        [good.url, true],
        [missing.url, false],
      ].sort(),
    )
  })

  it('drops a mirror that ignores Range without reading the whole file from it', async () => {
    const primary = await mirror()
    const whole = await mirror({ignoreRange: true})
    const {result, messages} = await run({url: primary.url, mirrors: [whole.url], output: dir()})
    assert.equal(result.sha256, digest)
    assert.ok(messages.some((x) => x.includes(`not using mirror ${whole.url}: it does not serve byte ranges`)), messages.join('\n'))
    assert.ok(whole.bytesSent < content.length / 2, `${whole.bytesSent} of ${content.length} bytes sent by the mirror that ignores Range`)
  })

  it('sends credentials written in a URL as Basic auth to that URL alone, and never shows them', async () => {
    const basic = (pair: string) => `Basic ${Buffer.from(pair).toString('base64')}`
    const only = (expected: string) => ({authorize: (req: {headers: {authorization?: string}}) => (req.headers.authorization === expected ? undefined : 401)})
    const primary = await mirror({perConnectionRate: 4 * MiB, ...only(basic('ops:s3cr@t'))})
    const other = await mirror({perConnectionRate: 4 * MiB, ...only(basic('mirror-user:m1rr0r'))})
    // Through a redirect, as private registries often answer.
    const url = primary.redirectUrl.replace('http://', 'http://ops:s3cr%40t@')
    const mirrorUrl = other.url.replace('http://', 'http://mirror-user:m1rr0r@')
    const {result, messages} = await run({url, mirrors: [mirrorUrl], output: join(dir(), 'model.bin')})
    assert.equal(result.sha256, digest)
    assert.ok(primary.requests.length > 1 && primary.requests.every((r) => r.authorization === basic('ops:s3cr@t')), 'every request to the primary had its credentials')
    assert.ok(other.requests.every((r) => r.authorization === basic('mirror-user:m1rr0r')), "the mirror got its own, never the primary's")
    assert.deepEqual(result.mirrors.map((x) => [x.url, x.dropped]), [[other.url, undefined]], 'the mirror was accepted, and is shown without its credentials')
    assert.doesNotMatch(JSON.stringify(result) + messages.join('\n'), /s3cr|m1rr0r/)
  })

  it('fails on a digest mismatch and leaves nothing under the destination name', async () => {
    const m = await mirror()
    const out = join(dir(), 'model.bin')
    await rejects(run({url: m.url, output: out, sha256: 'a'.repeat(64)}), 4, /sha256 mismatch.*expected a{64}, got [0-9a-f]{64}/)
    assert.ok(!existsSync(out) && !existsSync(`${out}.part`) && !existsSync(`${out}.part.journal`))
  })

  it('checks a small file (hashed in place, without a worker) just the same', async () => {
    const small = makeContent(300_000, 5)
    const m = await mirror({content: small})
    const out = join(dir(), 'config.bin')
    await rejects(run({url: m.url, output: out, sha256: 'a'.repeat(64)}), 4, /sha256 mismatch/)
    assert.ok(!existsSync(out) && !existsSync(`${out}.part`))
    const {result} = await run({url: m.url, output: out, sha256: sha256(small)})
    assert.equal(result.sha256, sha256(small))
    assert.ok(readFileSync(out).equals(small))
  })

  it('says a destination with the expected digest is complete, without downloading', async () => {
    const m = await mirror()
    const out = join(dir(), 'model.bin')
    writeFileSync(out, content)
    const {result} = await run({url: m.url, output: out, sha256: digest})
    assert.equal(result.alreadyComplete, true)
    assert.equal(m.requests.length, 0)
  })

  it('a pull that waited on another of the same URL takes the file it put in place, hashed, not fetched', async () => {
    const m = await mirror({linkRate: 1 * MiB})
    const out = join(dir(), 'model.bin')
    const first = run({url: m.url, output: out})
    // The second starts once the first holds the lock, so that it is the one that waits.
    while (!existsSync(`${out}.part.lock`)) await new Promise((r) => setTimeout(r, 20))
    let waiting!: () => void
    const waits = new Promise<void>((resolve) => (waiting = resolve))
    const second = pull({url: m.url, output: out}, {info: (msg) => msg.startsWith('waiting for another mtune') && waiting()})
    await Promise.race([waits, second.then(() => assert.fail('the second pull did not wait on the first'))])
    m.setOptions({linkRate: 64 * MiB})
    const [{result: a}, b] = await Promise.all([first, second])
    assert.equal(a.pulledByAnother, false)
    assert.deepEqual([b.alreadyComplete, b.pulledByAnother, b.verified, b.sha256, b.bytesFetched, b.size], [true, true, false, digest, 0, content.length])
  })

  it('a pull that waited on another of the same URL and sha256 takes the file it checked, not hashed again', async () => {
    const m = await mirror({linkRate: 1 * MiB})
    const out = join(dir(), 'model.bin')
    const first = run({url: m.url, output: out, sha256: digest})
    while (!existsSync(`${out}.part.lock`)) await new Promise((r) => setTimeout(r, 20))
    let waiting!: () => void
    const waits = new Promise<void>((resolve) => (waiting = resolve))
    const said: string[] = []
    // While it waits, it shows the first one's progress (from its journal), not a line that stands still.
    let progressed!: (p: Progress) => void
    const shown = new Promise<Progress>((resolve) => (progressed = resolve))
    const second = pull(
      {url: m.url, output: out, sha256: digest},
      {info: (msg) => (said.push(msg), msg.startsWith('waiting for another mtune') && waiting()), progress: (p) => p.done > 0 && progressed(p)},
    )
    await Promise.race([waits, second.then(() => assert.fail('the second pull did not wait on the first'))])
    const p = await Promise.race([shown, second.then(() => assert.fail('no progress was shown while waiting'))])
    assert.equal(p.size, content.length)
    assert.ok(p.done < content.length && p.connections === 0, JSON.stringify(p))
    m.setOptions({linkRate: 64 * MiB})
    const [, b] = await Promise.all([first, second])
    assert.deepEqual([b.alreadyComplete, b.pulledByAnother, b.verified, b.sha256, b.bytesFetched], [true, true, true, digest, 0])
    assert.ok(said.some((l) => /another mtune pulled .*model\.bin from this URL and checked its sha256 while this one waited: taking it as it is/.test(l)), said.join('\n'))
  })

  it('refuses to overwrite without --force, and replaces with it', async () => {
    const m = await mirror()
    const out = join(dir(), 'model.bin')
    writeFileSync(out, 'old')
    await rejects(run({url: m.url, output: out}), 2, /already exists, 3 of the server's \d+ bytes: a download another tool cut short \(wget, curl\)\? --continue keeps it/)
    const {result} = await run({url: m.url, output: out, force: true})
    assert.equal(result.sha256, digest)
    // The same size: likely this file, and how to check it; neither case touched the file.
    await rejects(run({url: m.url, output: out}), 2, /already exists, as large as the server's file \(\d+ bytes\): likely this file\. Check it: mtune verify \S+ --sha256 HEX; replace it: --force/)
    assert.equal(existsSaid('/m/x', 10, 5), "/m/x already exists and is not the server's file (10 bytes, not 5); use --force to replace it, or -o to choose another path")
    assert.equal(existsSaid('/m/x', 10), '/m/x already exists; use --force to replace it, or -o to choose another path', 'a server that gives no size')
  })

  it('refuses to start when the file cannot fit, before writing anything', async () => {
    const out = join(dir(), 'model.bin')
    const fake = await fakeSizeServer(100 * 1024 ** 4)
    await rejects(run({url: fake, output: out}), 5, /not enough space in .*: 100 TiB still needed, .* free; free some space, or choose another -o/)
    assert.ok(!existsSync(`${out}.part`) && !existsSync(`${out}.part.journal`))
  })

  it('never stitches two versions, even when the server sends no ETag or Last-Modified', async () => {
    const m = await mirror({etag: false, lastModified: false})
    const out = join(dir(), 'model.bin')
    await rejects(run({url: m.url, output: out, openPartFile: diskFullAfter(8 * MiB)}), 5, /disk full/)
    // Replaced on the server, same size, nothing to tell it by but the bytes.
    const changed = makeContent(content.length, 12)
    m.setOptions({content: changed})
    const {result, messages} = await run({url: m.url, output: out})
    assert.equal(result.sha256, sha256(changed))
    assert.ok(messages.some((x) => /the bytes kept from the last run .* are not the server's now.*starting over/.test(x)), messages.join('\n'))
    // And a resume of the same file is still a resume.
    const same = await mirror({etag: false, lastModified: false})
    const again = join(dir(), 'model.bin')
    await rejects(run({url: same.url, output: again, openPartFile: diskFullAfter(8 * MiB)}), 5, /disk full/)
    const resumed = await run({url: same.url, output: again})
    assert.equal(resumed.result.sha256, digest)
    assert.ok(resumed.result.resumedBytes >= 7 * MiB, `resumed from ${resumed.result.resumedBytes}`)
  })

  it('fails cleanly when the part file cannot be created, with requests already under way', async () => {
    const m = await mirror()
    const out = join(dir(), 'model.bin')
    const refused: OpenPartFile = async () => {
      throw Object.assign(new Error('EACCES: permission denied'), {code: 'EACCES'})
    }
    await rejects(run({url: m.url, output: out, openPartFile: refused}), 5, /cannot create .*model\.bin\.part: EACCES/)
    assert.ok(!existsSync(`${out}.part.journal`), 'no journal is left for a file that never existed')
  })

  it('stops cleanly on ENOSPC, keeps what is on disk, and a second run resumes', async () => {
    const m = await mirror()
    const out = join(dir(), 'model.bin')
    await rejects(run({url: m.url, output: out, openPartFile: diskFullAfter(8 * MiB)}), 5, /disk full while writing .*model\.bin\.part.*run the same command again to resume/)
    assert.ok(existsSync(`${out}.part`) && existsSync(`${out}.part.journal`), 'partial file and journal are kept')
    const before = m.bytesSent
    const {result} = await run({url: m.url, output: out})
    assert.equal(result.sha256, digest)
    assert.ok(result.resumedBytes >= 7 * MiB, `resumed from ${result.resumedBytes}`)
    assert.ok(m.bytesSent - before <= content.length - result.resumedBytes + MiB, 'the second run fetched only what was missing')
  })

  it('removes what no run can continue when a download without ranges stops, and says it starts over', async () => {
    // A full disk: the part file could only be discarded by the next run, and is in the way now.
    const m = await mirror({noLength: true, etag: false, lastModified: false})
    const out = join(dir(), 'model.bin')
    await rejects(run({url: m.url, output: out, openPartFile: diskFullAfter(8 * MiB)}), 5, /disk full while writing .*model\.bin\.part \(removed: it could not be continued\): free some space and run the same command again \(the server gives no size or no ranges, so the download starts over\)/)
    assert.ok(!existsSync(`${out}.part`) && !existsSync(`${out}.part.journal`), 'nothing is left of a download that cannot be resumed')
    // Interrupted: the same, and the line does not promise a resume.
    const slow = await mirror({ignoreRange: true, linkRate: 8 * MiB})
    const abort = new AbortController()
    const pulling = run({url: slow.url, output: out, signal: abort.signal})
    while (slow.bytesSent < 2 * MiB) await new Promise((r) => setTimeout(r, 20))
    abort.abort()
    await rejects(pulling, 130, /^interrupted: run the same command again \(the server gives no size or no ranges, so the download starts over\)$/)
    assert.ok(!existsSync(`${out}.part`) && !existsSync(`${out}.part.journal`), 'nothing is left of a download that cannot be resumed')
    const {result} = await run({url: slow.url, output: out})
    assert.equal(result.sha256, digest)
  })

  it('says a presigned link that stops being accepted mid-pull has expired, and a fresh one resumes', async () => {
    // An S3- or CDN-style link the user was given: accepted until the mirror has sent 4 MiB, then
    // refused as an expired signature is. Nothing can renew it but the user.
    let signature = 'first'
    const m = await mirror({authorize: (req) => (new URL(req.url ?? '/', 'http://x').searchParams.get('X-Amz-Signature') !== signature || m.bytesSent >= 4 * MiB ? 403 : undefined)})
    const out = join(dir(), 'model.bin')
    const expired = await rejects(run({url: `${m.url}?X-Amz-Signature=first`, output: out}), 3, /^http:\/\/127\.0\.0\.1:\d+\/file\/model\.bin\?… was accepted when the pull started and is refused now \(403\): a signed link that expired during the pull; get a fresh link and pull it to the same place, which resumes what is on disk$/)
    assert.equal(expired.code, 'link-expired')
    assert.ok(existsSync(`${out}.part`), 'what was fetched is kept')
    signature = 'second'
    m.setOptions({authorize: (req) => (new URL(req.url ?? '/', 'http://x').searchParams.get('X-Amz-Signature') === signature ? undefined : 403)})
    const {result} = await run({url: `${m.url}?X-Amz-Signature=second`, output: out})
    assert.equal(result.sha256, digest)
    assert.ok(result.resumedBytes > 0, 'the fresh link resumed the bytes the expired one served')
    // A link refused from the start is not said to have expired.
    await rejects(run({url: `${m.url}?X-Amz-Signature=never`, output: join(dir(), 'other.bin')}), 3, /^cannot download .*: access denied \(403\)/)
  })

  it('warns, while there is time, that a presigned link will expire before the pull can finish', async () => {
    // 16 MiB at 256 KiB/s needs about a minute; the link says it expires in 40 s.
    const m = await mirror({linkRate: 256 * 1024})
    const expires = Math.floor(Date.now() / 1000) + 40
    const abort = new AbortController()
    const warnings: string[] = []
    const pulling = pull(
      {url: `${m.url}?Expires=${expires}&Signature=abc`, output: join(dir(), 'model.bin'), connections: 4, chunkSize: 256 * 1024, signal: abort.signal},
      {
        warn: (w) => {
          warnings.push(w)
          if (/expires at/.test(w)) abort.abort()
        },
      },
    )
    await assert.rejects(pulling, /interrupted/)
    const said = warnings.find((w) => /expires at/.test(w))
    assert.match(said ?? warnings.join('\n'), /^http:\/\/127\.0\.0\.1:\d+\/file\/model\.bin\?… expires at \d\d:\d\d:\d\d UTC \(in \d+s\), before this pull can finish \(about (\d+m\d\d|\d+)s more at [\d.]+ KiB\/s\): what is fetched by then is kept; pull a fresh link to the same place to go on$/)
  })

  it('is interrupted cleanly by its abort signal and resumes where it stopped', async () => {
    const m = await mirror({linkRate: 8 * MiB})
    const out = join(dir(), 'model.bin')
    const abort = new AbortController()
    const pulling = run({url: m.url, output: out, signal: abort.signal})
    while (m.bytesSent < 6 * MiB) await new Promise((r) => setTimeout(r, 20))
    abort.abort()
    await rejects(pulling, 130, /interrupted: run the same command again to resume/)
    m.setOptions({linkRate: undefined})
    const {result, messages} = await run({url: m.url, output: out})
    assert.equal(result.sha256, digest)
    assert.ok(result.resumedBytes >= 5 * MiB)
    assert.ok(messages.some((x) => /^resuming: /.test(x)))
    assert.ok(m.bytesSent <= content.length * 1.1, `fetched ${m.bytesSent} in all`)
  })

  it('says a read-only filesystem is one, not a permission to fix', async (t) => {
    const mount = join(dir(), 'ro')
    mkdirSync(mount)
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', mount], {stdio: 'ignore'})
    } catch {
      t.skip('needs root and mount(8): a read-only tmpfs stands in for an image or snapshot')
      return
    }
    try {
      const m = await mirror()
      await rejects(run({url: m.url, output: join(mount, 'sub', 'model.bin')}), 5, /^cannot write to .*ro \(to make .*ro\/sub in it\): it is on a read-only filesystem; choose another -o$/)
    } finally {
      execFileSync('umount', [mount])
    }
  })

  it('rejects bad input before any request', async () => {
    await rejects(pull({url: 'not a url'}), 2, /invalid URL "not a url"/)
    await rejects(pull({url: 'ftp://host/file'}), 2, /unsupported scheme "ftp"/)
    await rejects(pull({url: 'http://127.0.0.1:9/x', sha256: 'xyz'}), 2, /invalid sha256 "xyz": expected 64 hexadecimal/)
    // A line copied whole from SHA256SUMS: the digest to give, alone.
    await rejects(pull({url: 'http://127.0.0.1:9/x', sha256: `${'AB'.repeat(32)}  model.gguf`}), 2, new RegExp(`that is a sha256sum line; give its digest alone: --sha256 ${'ab'.repeat(32)}$`))
    await rejects(pull({url: 'http://127.0.0.1:9/x', mirrors: ['file:///etc/passwd']}), 2, /unsupported scheme "file" in --mirror URL/)
  })
})

/** A server that claims a file of `size` bytes and serves nothing: enough for the free-space check. */
async function fakeSizeServer(size: number): Promise<string> {
  const {createServer} = await import('node:http')
  const server = createServer((req, res) => {
    const [, from, to] = /bytes=(\d+)-(\d*)/.exec(req.headers.range ?? '') ?? ['', '0', '']
    const end = to ? Number(to) : size - 1
    res.writeHead(206, {'content-range': `bytes ${from}-${end}/${size}`, 'content-length': String(end - Number(from) + 1)})
    res.end()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  after(() => {
    server.closeAllConnections()
    server.close()
  })
  const {port} = server.address() as {port: number}
  return `http://127.0.0.1:${port}/huge.bin`
}

describe('the engine refuses what it did not ask for, and never waits past Ctrl-C', () => {
  it('refuses a body that runs past its Content-Range, writing nothing beyond the range', async () => {
    // The first ranged requests after the probe come back as chunked 206s with 64 KiB too many.
    const m = await mirror({fault: (q) => (q.index >= 1 && q.index <= 4 && q.range ? {overrun: 64 * 1024} : undefined)})
    const out = join(dir(), 'model.bin')
    // One connection: its segment is the whole file, so each request ends before the segment does.
    const {result} = await run({url: m.url, output: out, connections: 1, maxConnections: 1})
    assert.equal(result.sha256, digest)
    assert.ok(readFileSync(out).equals(content), 'not one overrun byte was written into the file')
    assert.ok(result.retries >= 1, 'the overrunning answers were refused and retried')
  })

  it('waits a capped time for a long Retry-After, and Ctrl-C ends the wait at once', async () => {
    // Every request but the probe is told to come back in an hour.
    const m = await mirror({fault: (q) => (q.index >= 1 ? {status: 503, retryAfter: '3600'} : undefined)})
    const controller = new AbortController()
    const messages: string[] = []
    const pulling = pull(
      {url: m.url, output: join(dir(), 'model.bin'), connections: 2, chunkSize: 256 * 1024, stallTimeoutMs: 5_000, random: () => 0.5, signal: controller.signal},
      {warn: (msg) => messages.push(msg), info: () => {}},
    )
    pulling.catch(() => {})
    const deadline = Date.now() + 20_000
    while (!messages.some((x) => /waiting/.test(x)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    assert.match(messages.find((x) => /waiting/.test(x)) ?? '', /waiting 300s \(the server asked for 3600s; mtune waits at most 300s at a time, then asks again\)/)
    const stoppedAt = Date.now()
    controller.abort()
    await assert.rejects(pulling, (e: MtuneError) => e.exitCode === 130)
    assert.ok(Date.now() - stoppedAt < 5_000, `Ctrl-C took ${Date.now() - stoppedAt} ms to end the wait`)
  })
})
