import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {TokenBucket} from '../src/lib/transfer/token-bucket.js'

const MiB = 1024 * 1024

/** Blocks the event loop, as a long GC pause or a starved process does. */
function stall(ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end);
}

/** --limit-rate's bucket: whether the cap, not the path, holds the pull back (the ramp adds no connections then). */
describe('TokenBucket', () => {
  it('is not binding while the pull takes less than the cap', async () => {
    const bucket = new TokenBucket(8 * MiB)
    await bucket.take(256 * 1024)
    assert.equal(bucket.binding(performance.now(), 400, 4 * MiB), false)
  })

  it('is binding once the pull draws the burst down, before any connection has had to wait', async () => {
    const bucket = new TokenBucket(8 * MiB)
    await bucket.take(1.5 * MiB)
    assert.equal(bucket.binding(performance.now(), 400), true)
  })

  it('is binding when the pull receives at the cap, whatever the burst holds', () => {
    const bucket = new TokenBucket(8 * MiB)
    assert.equal(bucket.binding(performance.now(), 400, 8 * MiB), true)
  })

  it('is binding while a connection waits, and for a window after a wait that a stalled event loop stretched', async () => {
    const bucket = new TokenBucket(4 * MiB)
    await bucket.take(2 * MiB)
    // The burst is 1 MiB: this waits about 1/4 s for the tokens to come back above zero.
    const waiting = bucket.take(64 * 1024)
    assert.equal(bucket.binding(performance.now(), 400), true, 'a connection waits now')
    // The wait began long before the window below ends; only its end, after the stall, is in it.
    stall(600)
    await waiting
    const after = performance.now()
    assert.equal(bucket.binding(after + 300, 400), true, 'the wait just ended')
    // Well after: the tokens are back to the whole burst and nothing waits.
    assert.equal(bucket.binding(after + 5_000, 400), false)
  })
})
