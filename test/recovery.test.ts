import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {MtuneError} from '../src/lib/errors.js'
import {TransferError} from '../src/lib/net/retry-policy.js'
import {SOURCE_FAILURE_LIMIT} from '../src/lib/transfer/failure-policy.js'
import type {LinkRenewal} from '../src/lib/transfer/link-renewal.js'
import {Meter} from '../src/lib/transfer/meter.js'
import {RateBook} from '../src/lib/transfer/rate-book.js'
import {Recovery, type RecoveryContext} from '../src/lib/transfer/recovery.js'
import {SourcePool, newSource, type Source} from '../src/lib/transfer/source-pool.js'
import {FileChanged} from '../src/lib/transfer/transfer-errors.js'

/**
 * Recovery carries out failure-policy's decisions: these check what it does to the pull, the
 * sources and the ramp, with every collaborator a recording fake.
 */
function setup(o: {mirrors?: number; slots?: number; renew?: (source: Source) => Promise<boolean>; target?: string} = {}) {
  const sources = new SourcePool()
  // Resolved long ago: a refused link may be renewed at once.
  const primary = newSource('https://hub.test/model.bin', o.target ?? 'https://hub.test/model.bin', {etag: '"v1"'}, true, performance.now() - 10_000)
  sources.add(primary)
  const mirrors = Array.from({length: o.mirrors ?? 0}, (_, i) => newSource(`https://mirror${i}.test/model.bin`, `https://mirror${i}.test/model.bin`, {}, false, 0))
  for (const m of mirrors) sources.add(m)
  const seen = {failed: [] as unknown[], warned: [] as string[], throttled: 0, refused: 0, renewed: 0}
  const ctx: RecoveryContext = {
    sources,
    links: {
      renew: async (source: Source) => {
        seen.renewed++
        return (await o.renew?.(source)) ?? false
      },
    } as unknown as LinkRenewal,
    ramp: {
      target: 4,
      refused: () => void seen.refused++,
      throttled: () => {
        seen.throttled++
        return 2
      },
    },
    ranged: true,
    maxRetries: 3,
    random: () => 0.5,
    slots: () => o.slots ?? 4,
    warn: (m) => void seen.warned.push(m),
    fail: (e) => void seen.failed.push(e),
    diskError: (cause) => new MtuneError('disk-full', `disk full (${(cause as Error).message})`, 5),
  }
  return {recovery: new Recovery(ctx), sources, primary, mirrors, seen}
}

const reset = () => new TransferError('transient', 'connection reset')

describe('Recovery', () => {
  it('retries with a backoff, and gives up after the retries plus one round of every slot with no byte written', async () => {
    const {recovery, primary, seen} = setup({slots: 4})
    // maxRetries 3 + max(target 4, slots 4) = 7 failures in a row are allowed.
    for (let i = 1; i <= 7; i++) assert.ok((await recovery.failed(reset(), primary, i)) > 0, `failure ${i} is retried`)
    assert.equal(seen.failed.length, 0)
    assert.equal(await recovery.failed(reset(), primary, 8), 0)
    assert.equal(seen.failed.length, 1)
    assert.match((seen.failed[0] as Error).message, /giving up after 8 failed attempts in a row with no progress; last error: connection reset/)
    assert.equal(recovery.retries, 8)
  })

  it('starts the count again once bytes reach the disk', async () => {
    const {recovery, primary, seen} = setup()
    for (let i = 1; i <= 7; i++) await recovery.failed(reset(), primary, i)
    recovery.progressed()
    for (let i = 1; i <= 7; i++) await recovery.failed(reset(), primary, i)
    assert.equal(seen.failed.length, 0)
  })

  it('ends the pull on a full disk with the disk error, not counting it as a retry', async () => {
    const {recovery, primary, seen} = setup()
    const full = Object.assign(new Error('no space left on device'), {code: 'ENOSPC'})
    assert.equal(await recovery.failed(full, primary, 1), 0)
    assert.equal((seen.failed[0] as MtuneError).code, 'disk-full')
    assert.equal(recovery.retries, 0)
  })

  it('throttles on 429: the ramp steps down, the source rests for Retry-After, and a burst is said once', async () => {
    const {recovery, primary, seen} = setup()
    const tooMany = () => new TransferError('throttle', 'too many requests (429)', {status: 429, retryAfterMs: 3_000})
    const before = performance.now()
    const delay = await recovery.failed(tooMany(), primary, 1)
    await recovery.failed(tooMany(), primary, 1)
    assert.equal(seen.throttled, 2)
    assert.ok(delay >= 3_000, 'the slot waits at least what the server asked')
    assert.ok(primary.cooldownUntil >= before + 3_000, 'the source rests until then')
    assert.equal(seen.warned.length, 1, 'two refusals in a row at the same target are one warning')
    assert.match(seen.warned[0], /waiting 3\.0s, then 2 connection\(s\)/)
  })

  it('notes a refusal before the first byte on a fresh socket for the ramp (a limit per client)', async () => {
    const {recovery, primary, seen} = setup()
    await recovery.failed(reset(), primary, 1, undefined, true)
    await recovery.failed(new TransferError('transient', 'bad gateway', {status: 502}), primary, 1, undefined, true)
    assert.equal(seen.refused, 1, 'an HTTP status is an answer, not a refusal')
  })

  it('rests a failing mirror while others serve, and drops it after repeated failures', async () => {
    const {recovery, mirrors, sources, seen} = setup({mirrors: 1})
    const [mirror] = mirrors
    for (let i = 1; i < SOURCE_FAILURE_LIMIT; i++) {
      assert.ok((await recovery.failed(reset(), mirror, i)) > 0)
      assert.ok(mirror.cooldownUntil > 0, 'it rests')
      assert.ok(mirror.alive)
    }
    assert.equal(await recovery.failed(reset(), mirror, SOURCE_FAILURE_LIMIT), 0)
    assert.equal(mirror.alive, false)
    assert.match(seen.warned[0], /dropping mirror https:\/\/mirror0\.test\/model\.bin: 4 failures in a row/)
    assert.equal(seen.failed.length, 0, 'the primary goes on')
    assert.deepEqual(
      sources.mirrorReport().map((m) => m.dropped?.slice(0, 20)),
      ['4 failures in a row '],
    )
  })

  it('renews a signed link the CDN refuses and retries; one that cannot be renewed ends the pull', async () => {
    const signed = 'https://cdn.test/model.bin?Expires=1&Signature=x'
    const ok = setup({target: signed, renew: async () => true})
    const forbidden = () => new TransferError('fatal', 'forbidden (403)', {status: 403})
    assert.ok((await ok.recovery.failed(forbidden(), ok.primary, 1, signed)) > 0)
    assert.equal(ok.seen.renewed, 1)
    assert.equal(ok.seen.failed.length, 0)

    const stale = setup({target: signed, renew: async () => true})
    assert.ok((await stale.recovery.failed(forbidden(), stale.primary, 1, 'https://cdn.test/old-link')) > 0)
    assert.equal(stale.seen.renewed, 0, 'a request sent with a link renewed since just retries')

    const dead = setup({target: signed, renew: async () => false})
    assert.equal(await dead.recovery.failed(forbidden(), dead.primary, 1, signed), 0)
    assert.match((dead.seen.failed[0] as Error).message, /cannot download https:\/\/hub\.test\/model\.bin: forbidden \(403\)/)
  })

  it('ends the pull when the file changed on the primary', async () => {
    const {recovery, primary, seen} = setup()
    assert.equal(await recovery.failed(new TransferError('changed', 'its ETag changed'), primary, 1), 0)
    assert.ok(seen.failed[0] instanceof FileChanged)
  })
})

describe('RateBook', () => {
  const conn = (o: {firstByteAt?: number; bytes: number; stopped?: boolean}) => {
    const meter = new Meter(5_000)
    meter.add(o.bytes)
    return {startedAt: 0, firstByteAt: o.firstByteAt, stopReason: o.stopped ? 'replaced' : undefined, meter, left: 0, requestLeft: 0}
  }

  it('takes a finished connection\'s rate once it ran long enough, and only unstopped ones as typical', () => {
    const book = new RateBook(1024 * 1024)
    assert.equal(book.ended(conn({bytes: 1000}), 1_000), undefined, 'never got a byte')
    assert.equal(book.ended(conn({firstByteAt: 900, bytes: 1000}), 1_000), undefined, 'too short to tell')
    assert.equal(book.ended(conn({firstByteAt: 0, bytes: 2_000_000}), 1_000), 2_000_000)
    assert.equal(book.ended(conn({firstByteAt: 0, bytes: 9_000_000, stopped: true}), 1_000), 9_000_000, 'its source still learns the rate')
    assert.equal(book.typical([], 1_000), undefined, 'one typical rate is not enough')
    book.ended(conn({firstByteAt: 0, bytes: 4_000_000}), 1_000)
    book.ended(conn({firstByteAt: 0, bytes: 3_000_000}), 1_000)
    assert.equal(book.typical([], 1_000), 3_000_000, 'the median of 2, 3 and 4 MB/s; the stopped one left out')
    assert.equal(book.typical([], 12_000), undefined, 'forgotten after 10 s')
  })
})

describe('SourcePool', () => {
  it('spreads requests by the connections in flight and keeps each source\'s standing', () => {
    const pool = new SourcePool()
    const a = newSource('https://a.test/f', 'https://a.test/f', {}, true, 0)
    const b = newSource('https://b.test/f', 'https://b.test/f', {}, false, 0)
    pool.add(a)
    pool.add(b)
    pool.noteRate(a, 100)
    pool.noteRate(b, 100)
    assert.equal(pool.pick(0, [{source: a}, {source: a}, {source: b}]), b, 'the same rate: the less loaded one')
    pool.failed(b)
    pool.failed(b)
    assert.equal(b.failures, 2)
    pool.served(b, 10)
    assert.deepEqual([b.failures, b.bytes], [0, 10])
    pool.rest(b, 500)
    pool.rest(b, 200)
    assert.equal(b.cooldownUntil, 500, 'a rest never shortens one already under way')
    assert.equal(pool.pick(100, []), a)
    pool.rejected('https://user:secret@c.test/f', 'it serves different bytes')
    assert.deepEqual(pool.mirrorReport(), [
      {url: 'https://c.test/f', used: false, bytes: 0, dropped: 'it serves different bytes'},
      {url: 'https://b.test/f', used: true, bytes: 10, dropped: undefined},
    ])
  })

  it('a source behind a signed link knows when to renew it', () => {
    const expires = Math.floor(Date.now() / 1000) + 3600
    const s = newSource('https://hub.test/f', `https://cdn.test/f?Expires=${expires}&Signature=x`, {}, false, 0)
    assert.ok(s.renewAt !== undefined && s.renewAt < expires * 1000 && s.renewAt > Date.now())
  })
})
