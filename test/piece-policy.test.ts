import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {Meter} from '../src/lib/transfer/meter.js'
import {firstByteTime, pieceSizes, requestBytes, requestSeconds, share, straggling, typicalRate, worthCutting, type ConnectionView} from '../src/lib/transfer/piece-policy.js'

const MiB = 1024 * 1024

/** A connection that started at 0, had its first byte at `firstByteAt` and has received at `rate` since. */
function conn(o: {firstByteAt?: number; rate: number; now: number; left?: number; requestLeft?: number; startedAt?: number}): ConnectionView {
  const meter = new Meter()
  const from = o.firstByteAt ?? o.now
  for (let t = from; t <= o.now; t += 100) {
    meter.sample(t)
    meter.add((o.rate * 100) / 1000)
  }
  meter.sample(o.now)
  return {startedAt: o.startedAt ?? 0, firstByteAt: o.firstByteAt, meter, left: o.left ?? 8 * MiB, requestLeft: o.requestLeft ?? 4 * MiB}
}

describe('piece policy', () => {
  it('shares what is pending evenly far from the end, and like water near it', () => {
    assert.equal(share(64 * MiB, 4, MiB, [0, 0, 0]), 16 * MiB)
    // 2 MiB pending, 4 connections, two of them busy with 3 MiB each: the two idle ones get 1 MiB each.
    assert.equal(share(2 * MiB, 4, MiB, [3 * MiB, 3 * MiB, 0]), MiB)
    // One busy far past the level gets none of it: the others end together.
    assert.equal(share(3 * MiB, 3, MiB, [10 * MiB, 0]), 1.5 * MiB)
  })

  it('sizes pieces no bigger than a request, smaller in the endgame, and one piece without ranges', () => {
    assert.deepEqual(pieceSizes({ranged: true, target: 4, pending: 256 * MiB, minSplit: MiB, requestBytes: 12 * MiB, held: []}), {pieceSize: 12 * MiB, smallestPiece: MiB})
    assert.deepEqual(pieceSizes({ranged: true, target: 4, pending: 2 * MiB, minSplit: MiB, requestBytes: 12 * MiB, held: [0, 0, 0]}), {
      pieceSize: MiB / 2,
      smallestPiece: MiB / 4,
    })
    assert.equal(pieceSizes({ranged: false, target: 1, pending: 0, minSplit: MiB, requestBytes: MiB, held: []}).pieceSize, Number.MAX_SAFE_INTEGER)
  })

  it('asks for about 3 s of a typical connection while first bytes are slow or unknown, within bounds, or the chunk size given', () => {
    assert.equal(requestBytes(MiB, undefined, 10 * MiB), 30 * MiB)
    assert.equal(requestBytes(MiB, undefined, 10 * MiB, 80), 30 * MiB)
    assert.equal(requestBytes(MiB, undefined, 10 * MiB, 500), 30 * MiB)
    assert.equal(requestBytes(MiB, undefined, 100 * MiB), 64 * MiB)
    assert.equal(requestBytes(MiB, undefined, 100 * 1024), 2 * MiB)
    assert.equal(requestBytes(MiB, 8 * MiB, 100 * MiB, 1), 8 * MiB)
  })

  it('asks for shorter requests from a server that answers quickly: 40 first-byte waits, at least a quarter second', () => {
    assert.equal(requestSeconds(undefined), 3)
    assert.equal(requestSeconds(25), 1)
    assert.equal(requestSeconds(2), 0.25)
    assert.equal(requestSeconds(0), 0.25)
    assert.equal(requestBytes(MiB, undefined, 40 * MiB, 25), 40 * MiB)
    assert.equal(requestBytes(MiB, undefined, 40 * MiB, 1), 10 * MiB)
    // Never below two minimum splits.
    assert.equal(requestBytes(MiB, undefined, 2 * MiB, 1), 2 * MiB)
  })

  it('reads the first-byte wait as the upper median of the connections that had one', () => {
    const at = (startedAt: number, firstByteAt?: number) => ({startedAt, firstByteAt})
    assert.equal(firstByteTime([]), undefined)
    assert.equal(firstByteTime([at(0)]), undefined)
    assert.equal(firstByteTime([at(0, 5), at(10, 90), at(0)]), 80)
    assert.equal(firstByteTime([at(0, 5), at(0, 30), at(0, 400)]), 30)
  })

  it('takes the median of settled connections and recent finishers, none from fewer than three', () => {
    const now = 5_000
    const running = [conn({firstByteAt: 0, rate: 10 * MiB, now}), conn({firstByteAt: 4_800, rate: 1, now})]
    assert.equal(typicalRate(running, [], now), undefined)
    const median = typicalRate(running, [8 * MiB, 12 * MiB], now)!
    assert.ok(Math.abs(median - 10 * MiB) <= MiB, `${median}`)
  })

  it('cuts into a request only when its connection needs a while to finish it', () => {
    const now = 3_000
    assert.equal(worthCutting(conn({firstByteAt: 100, rate: MiB, now, requestLeft: 4 * MiB}), now), true)
    assert.equal(worthCutting(conn({firstByteAt: 100, rate: 100 * MiB, now, requestLeft: 4 * MiB}), now), false)
    assert.equal(worthCutting(conn({rate: 0, now}), now), false, 'no first byte yet')
  })

  it('calls a connection far below the median slow, and one that would end well after a fresh one late', () => {
    const now = 3_000
    assert.equal(straggling(conn({firstByteAt: 1_000, rate: 100 * 1024, now}), 10 * MiB, now, false)?.why, 'slow')
    assert.equal(straggling(conn({firstByteAt: 1_000, rate: 9 * MiB, now}), 10 * MiB, now, false), undefined)
    const halfSpeed = conn({firstByteAt: 1_000, rate: 3 * MiB, now, left: 32 * MiB})
    assert.equal(straggling(halfSpeed, 10 * MiB, now, false), undefined, 'a third of the median: not slow')
    assert.equal(straggling(halfSpeed, 10 * MiB, now, true)?.why, 'late', 'at the end, a fresh one would finish far sooner')
    assert.equal(straggling(conn({firstByteAt: 1_000, rate: 1, now, left: 1024}), 10 * MiB, now, true), undefined, 'too little left to move')
  })
})
