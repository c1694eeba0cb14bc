import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {runInSlots, SMALL_FILE} from '../src/lib/sources/file-slots.js'
import type {PlannedFile} from '../src/lib/sources/plan.js'
import {ProgressSum} from '../src/lib/sources/progress-sum.js'
import type {Progress} from '../src/lib/transfer/pull-types.js'

const file = (name: string, size?: number): PlannedFile => ({name, url: `http://h/${name}`, size, dest: `/m/${name}`, present: false})

describe("a model's files at once", () => {
  it('runs four big files at once, eight small ones, or a mix, in the order given', async () => {
    const big = Array.from({length: 6}, (_, i) => file(`big-${i}`, SMALL_FILE))
    const small = Array.from({length: 20}, (_, i) => file(`small-${i}`, 1024))
    const unknown = [file('list-entry')]
    let running: PlannedFile[] = []
    const most = {big: 0, small: 0, weight: 0}
    const started: string[] = []
    const gates: Array<() => void> = []
    const run = async (f: PlannedFile) => {
      started.push(f.name)
      running.push(f)
      const bigs = running.filter((r) => r.size === undefined || r.size >= SMALL_FILE).length
      const smalls = running.length - bigs
      most.big = Math.max(most.big, bigs)
      most.small = Math.max(most.small, smalls)
      most.weight = Math.max(most.weight, bigs * 2 + smalls)
      await new Promise<void>((resolve) => gates.push(resolve))
      running = running.filter((r) => r !== f)
      return f.size
    }
    const all = [...big, ...unknown, ...small]
    const done = runInSlots(all, 4, run, () => false)
    // Let the files end one at a time, oldest first, until all have run.
    while (started.length < all.length || running.length > 0) {
      await new Promise((r) => setImmediate(r))
      gates.shift()?.()
    }
    await done
    assert.deepEqual(started, all.map((f) => f.name), 'in the order given')
    assert.equal(most.big, 4, 'big files (and ones of unknown size): four at once')
    assert.equal(most.small, 8, 'small files: eight at once')
    assert.equal(most.weight, 8, 'a mix stays within the same room')
  })

  it("weighs a list's files of unknown size as the last of them that ended: big at first, then as they turn out", async () => {
    // Each file's running count at its start, the files ending oldest first.
    const atOnce = async (sizes: number[]): Promise<number[]> => {
      const list = sizes.map((_, i) => file(`url-${i}`))
      const seen: number[] = []
      let running = 0
      const gates: Array<() => void> = []
      const done = runInSlots(list, 4, async (f) => {
        seen.push(++running)
        await new Promise<void>((resolve) => gates.push(resolve))
        running--
        return sizes[list.indexOf(f)]
      }, () => false)
      while (seen.length < list.length || running > 0) {
        await new Promise((r) => setImmediate(r))
        gates.shift()?.()
      }
      await done
      return seen
    }
    const small = await atOnce(Array(30).fill(20_000))
    assert.deepEqual(small.slice(0, 5), [1, 2, 3, 4, 4], 'four at first, as big files; the fifth once one ended')
    assert.equal(Math.max(...small), 8, 'eight once small ones ended')
    const shards = await atOnce(Array(12).fill(SMALL_FILE))
    assert.equal(Math.max(...shards), 4, 'a list of big files stays at four')
  })

  it('starts nothing more once stopped', async () => {
    const seen: string[] = []
    let stop = false
    await runInSlots([file('a', 1), file('b', 1), file('c', 1)], 1, async (f) => {
      seen.push(f.name)
      stop = true
      return f.size
    }, () => stop)
    assert.ok(seen.length < 3, seen.join())
  })
})

describe("a model's progress line", () => {
  it('has a rate when its files are all small, each over before its first tick', () => {
    const lines: Progress[] = []
    const [a, b, c] = [file('a', 50), file('b', 100), file('c', 10)]
    const sum = new ProgressSum([a, b, c], {progress: (p) => lines.push(p)})
    sum.begin(a)
    sum.begin(b)
    sum.begin(c)
    sum.update(b, {size: 100, done: 10, fetched: 10, rate: 0, connections: 3, elapsedMs: 5})
    sum.end(a, 50, 50)
    sum.stop()
    const last = lines.at(-1)!
    assert.equal(last.size, 160)
    assert.equal(last.done, 60)
    assert.ok(last.rate > 0, 'bytes were written: not 0 B/s')
    assert.equal(last.connections, 4, 'b says 3; c, under way, has its first request')
  })

  it('counts neither the bytes another mtune pulled nor those kept from an earlier run', () => {
    const lines: Progress[] = []
    const [a, b] = [file('a', 1000), file('b', 1000)]
    const sum = new ProgressSum([a, b], {progress: (p) => lines.push(p)})
    sum.begin(a)
    sum.begin(b)
    sum.end(a, 1000, 0)
    sum.update(b, {size: 1000, done: 900, fetched: 0, rate: 0, connections: 1, elapsedMs: 5})
    sum.stop()
    assert.equal(lines.at(-1)!.done, 1900)
    assert.equal(lines.at(-1)!.rate, 0)
  })
})
