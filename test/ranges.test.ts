import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {RangeSet} from '../src/lib/transfer/range-set.js'
import {SegmentManager, remaining, type PiecePlan} from '../src/lib/transfer/segment-manager.js'

const MiB = 1024 * 1024
/** Pieces of `pieceSize`, none below `smallestPiece`, any request in flight worth cutting into. */
const plan = (pieceSize = 16 * MiB, smallestPiece = MiB): PiecePlan => ({pieceSize, smallestPiece, worthCutting: () => true})

describe('RangeSet', () => {
  it('merges overlapping and adjacent ranges and reports gaps', () => {
    const set = new RangeSet()
    set.add(10, 20)
    set.add(30, 40)
    set.add(20, 25)
    set.add(35, 50)
    assert.deepEqual(set.toArray(), [
      {start: 10, end: 25},
      {start: 30, end: 50},
    ])
    assert.equal(set.total, 35)
    assert.equal(set.prefixEnd, 0)
    assert.deepEqual(set.missing(60), [
      {start: 0, end: 10},
      {start: 25, end: 30},
      {start: 50, end: 60},
    ])
    set.add(0, 30)
    assert.equal(set.prefixEnd, 50)
    assert.deepEqual(set.missing(50), [])
  })
})

describe('SegmentManager', () => {
  it('hands out pieces in file order, skipping what is on disk', () => {
    const m = new SegmentManager(
      [
        {start: 0, end: 10 * MiB},
        {start: 20 * MiB, end: 30 * MiB},
      ],
      MiB,
    )
    const got = []
    for (let s = m.acquire(plan(4 * MiB)); s; s = m.acquire(plan(4 * MiB))) {
      got.push([s.start / MiB, s.end / MiB])
      if (got.length > 10) break
    }
    // 10 MiB in 4 MiB pieces leaves a 2 MiB runt, which stays a piece of its own (>= 1 MiB).
    assert.deepEqual(got.slice(0, 6), [
      [0, 4],
      [4, 8],
      [8, 10],
      [20, 24],
      [24, 28],
      [28, 30],
    ])
  })

  it('steals the second half of the largest active range once nothing is pending', () => {
    const m = new SegmentManager([{start: 0, end: 64 * MiB}], MiB)
    const a = m.acquire(plan(32 * MiB))!
    const b = m.acquire(plan(32 * MiB))!
    m.advance(a, 30 * MiB)
    const c = m.acquire(plan(32 * MiB))!
    // b has 32 MiB left, a only 2: b is split in the middle.
    assert.equal(c.start, 48 * MiB)
    assert.equal(c.end, 64 * MiB)
    assert.equal(b.end, 48 * MiB)
    assert.equal(m.advance(b, 20 * MiB), 16 * MiB, 'b may only write up to its new end')
  })

  it('does not take bytes that are being written, nor split below twice the minimum', () => {
    const m = new SegmentManager([{start: 0, end: 3 * MiB}], MiB)
    const a = m.acquire(plan())!
    m.writing(a, 2 * MiB)
    assert.equal(remaining(a), MiB)
    assert.equal(m.acquire(plan()), undefined, '1 MiB left is below 2 x minSplit')
  })

  it('prefers to take what the victim has not requested yet while plenty is left', () => {
    const m = new SegmentManager([{start: 0, end: 100 * MiB}], MiB)
    const a = m.acquire(plan(100 * MiB))!
    m.requesting(a, 60 * MiB)
    const b = m.acquire(plan(100 * MiB))!
    assert.equal(b.start, 60 * MiB, 'cut at the end of the request in flight, not at 50 MiB')
    assert.equal(a.end, 60 * MiB)
  })

  it('gives a straggler\'s remaining range to a fresh segment, and returns failures to pending', () => {
    const m = new SegmentManager([{start: 0, end: 8 * MiB}], MiB)
    const a = m.acquire(plan(8 * MiB))!
    m.advance(a, 3 * MiB)
    const b = m.takeOver(a, plan(8 * MiB))!
    assert.deepEqual([b.start, b.end], [3 * MiB, 8 * MiB])
    assert.equal(a.end, 3 * MiB)
    m.release(a)
    m.advance(b, MiB)
    m.release(b)
    const again = m.acquire(plan(8 * MiB))!
    assert.deepEqual([again.start, again.end], [4 * MiB, 8 * MiB])
    m.advance(again, 4 * MiB)
    m.release(again)
    assert.ok(m.done)
  })

  it('hands out smaller pieces near the end when the engine lowers the smallest piece', () => {
    const KiB = 1024
    const total = 1792 * KiB + 100 * KiB
    const m = new SegmentManager([{start: 0, end: total}], MiB)
    const whole = m.acquire(plan(0))!
    assert.deepEqual([whole.start, whole.end], [0, total], 'normally never below the minimum split')
    const n = new SegmentManager([{start: 0, end: total}], MiB)
    const small = plan(256 * KiB, 256 * KiB)
    const sizes: number[] = []
    for (let p = n.acquire(small); p; p = n.acquire(small)) sizes.push((p.end - p.start) / KiB)
    assert.deepEqual(sizes, [256, 256, 256, 256, 256, 256, 356], 'a remainder under the smallest piece joins the last one')
  })

  it('hands a straggler\'s range out a piece at a time, the rest first in line for idle connections', () => {
    const m = new SegmentManager([{start: 0, end: 32 * MiB}], MiB)
    const slow = m.acquire(plan(16 * MiB))!
    const next = m.acquire(plan(16 * MiB))!
    m.advance(slow, MiB)
    const fresh = m.takeOver(slow, plan(4 * MiB))!
    assert.deepEqual([fresh.start, fresh.end], [MiB, 5 * MiB])
    const helper = m.acquire(plan(4 * MiB))!
    assert.deepEqual([helper.start, helper.end], [5 * MiB, 9 * MiB], 'the hole near the front comes before anything else')
    assert.equal(next.start, 16 * MiB)
    const tail = m.acquire(plan(6.5 * MiB))!
    assert.deepEqual([tail.start, tail.end], [9 * MiB, 16 * MiB], 'a remainder under the minimum is not left behind')
  })
})
