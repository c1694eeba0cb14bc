import assert from 'node:assert/strict'
import {readFileSync, writevSync} from 'node:fs'
import {open} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {after, describe, it} from 'node:test'
import {pull} from '../src/lib/transfer/engine.js'
import {partFileOpener, writerOn} from '../src/lib/transfer/part-file.js'
import {POOL_MAX_MS, POOL_MIN_MS, SLEEP_BUDGET_MS, WINDOW_MS, writeGate, type WriteGate} from '../src/lib/transfer/write-gate.js'
import {makeContent, mirrors, sha256} from './support/mirror-server.js'
import {tempDir} from './support/temp.js'

/** A gate on a clock the test moves, recording when it sends writes to the pool. */
function gateAt() {
  let t = 0
  const pooled: Array<{at: number; forMs: number}> = []
  const gate = writeGate((forMs) => pooled.push({at: t, forMs}), () => t)
  return {gate, pooled, advance: (ms: number) => (t += ms), now: () => t}
}

describe('write gate', () => {
  it('keeps writing directly while writes only copy, however many, and brief kernel sleeps now and then', () => {
    const {gate, pooled, advance} = gateAt()
    // 10 s of a fat pipe: 1,300 writes a second of about 0.1-1.5 ms, and a 35 ms one each second.
    for (let s = 0; s < 10; s++) {
      for (let i = 0; i < 1300; i++) {
        assert.equal(gate.direct(), true)
        gate.took(i === 500 ? 35 : i % 10 === 0 ? 1.5 : 0.1)
        advance(WINDOW_MS / 1300)
      }
    }
    assert.deepEqual(pooled, [])
  })

  it('sends writes to the pool once they sleep too long within a second, and tries directly again after', () => {
    const {gate, pooled, advance, now} = gateAt()
    // Dirty-page throttling: each write sleeps 40 ms.
    let writes = 0
    let last = 0
    while (gate.direct()) {
      last = now()
      gate.took(40)
      advance(40)
      writes++
    }
    assert.equal(writes, Math.floor(SLEEP_BUDGET_MS / 40) + 1, 'the budget of sleep, then the pool')
    assert.deepEqual(pooled, [{at: last, forMs: POOL_MIN_MS}])
    advance(last + POOL_MIN_MS - 1 - now())
    assert.equal(gate.direct(), false)
    advance(1)
    assert.equal(gate.direct(), true, 'tries directly again')
  })

  it('stays in the pool longer each time trying directly sleeps again, up to a bound, and short again after a good second', () => {
    const {gate, pooled, advance} = gateAt()
    const sleepUntilPooled = () => {
      while (gate.direct()) gate.took(SLEEP_BUDGET_MS + 1)
    }
    const waitOut = () => {
      while (!gate.direct()) advance(100)
    }
    for (let i = 0; i < 7; i++) {
      sleepUntilPooled()
      waitOut()
    }
    assert.deepEqual(
      pooled.map((p) => p.forMs),
      [1, 2, 4, 8, 16, 32, 64].map((k) => Math.min(k * POOL_MIN_MS, POOL_MAX_MS)),
    )
    assert.equal(pooled.at(-1)!.forMs, POOL_MAX_MS)
    // A whole second of quick direct writes: the next fall-back is the short one.
    for (let i = 0; i <= 10; i++) {
      gate.took(0.2)
      advance(WINDOW_MS / 10)
    }
    sleepUntilPooled()
    assert.equal(pooled.at(-1)!.forMs, POOL_MIN_MS)
  })

  it('one write that sleeps past the budget on its own sends the writes to the pool (a filesystem waiting on its server)', () => {
    const {gate, pooled} = gateAt()
    gate.took(5000)
    assert.equal(gate.direct(), false)
    assert.equal(pooled.length, 1)
  })
})

describe('part file writer', () => {
  const fixed = (direct: boolean): WriteGate & {took: (ms: number) => void; times: number[]} => {
    const times: number[] = []
    return {direct: () => direct, took: (ms) => times.push(ms), times}
  }

  it('writes directly what the gate lets through, timing each write, and finishes short writes at the right place', async () => {
    const dir = tempDir('write-gate')
    const path = join(dir, 'f.part')
    const handle = await open(path, 'w+')
    const gate = fixed(true)
    let calls = 0
    // The kernel may write less than asked: 3 bytes at a time here.
    const short: typeof writevSync = (fd, buffers, position) => {
      calls++
      const first = Buffer.concat(buffers as Buffer[]).subarray(0, 3)
      return writevSync(fd, [first], position ?? undefined)
    }
    const part = writerOn(handle, gate, short)
    await part.write([Buffer.from('abcd'), Buffer.from('efgh'), Buffer.from('ignored')], 8, 2)
    await part.close()
    assert.equal(readFileSync(path).subarray(2).toString(), 'abcdefgh')
    assert.equal(calls, 3)
    assert.equal(gate.times.length, 3)
    assert.ok(gate.times.every((ms) => ms >= 0))
  })

  it('writes through the pool, never directly, while the gate says so', async () => {
    const dir = tempDir('write-gate')
    const path = join(dir, 'f.part')
    const handle = await open(path, 'w+')
    const gate = fixed(false)
    const part = writerOn(handle, gate, () => assert.fail('wrote directly'))
    await part.write([Buffer.from('hello '), Buffer.from('world')], 11, 0)
    await part.close()
    assert.equal(readFileSync(path, 'utf8'), 'hello world')
    assert.deepEqual(gate.times, [])
  })

  it('a direct write that fails (a full disk) fails the write, as one through the pool does', async () => {
    const dir = tempDir('write-gate')
    const handle = await open(join(dir, 'f.part'), 'w+')
    const full: typeof writevSync = () => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), {code: 'ENOSPC'})
    }
    const gate = fixed(true)
    const part = writerOn(handle, gate, full)
    await assert.rejects(part.write([Buffer.from('x')], 1, 0), {code: 'ENOSPC'})
    assert.equal(gate.times.length, 1, 'the failed write was timed too')
    await part.close()
  })
})

describe('a pull onto a disk slower than the network', () => {
  const content = makeContent(8 * 1024 * 1024, 21)
  const mirror = mirrors(content, after)

  it('says once that the disk sets the pace, writes through the pool meanwhile, and the file is intact', async () => {
    const m = await mirror()
    const out = join(tempDir('write-gate'), 'model.bin')
    // Each direct write sleeps 300 ms in the "kernel", as under dirty-page throttling.
    const asleep = new Int32Array(new SharedArrayBuffer(4))
    let direct = 0
    const throttled: typeof writevSync = (fd, buffers, position) => {
      direct++
      Atomics.wait(asleep, 0, 0, 300)
      return writevSync(fd, buffers, position ?? undefined)
    }
    const info: string[] = []
    const debug: string[] = []
    const result = await pull(
      {url: m.url, output: out, connections: 4, chunkSize: 1024 * 1024, stallTimeoutMs: 30_000, threads: 0, openPartFile: partFileOpener(undefined, throttled)},
      {info: (l) => info.push(l), warn: (l) => info.push(l), debug: (l) => debug.push(l)},
    )
    assert.equal(result.sha256, sha256(content))
    const said = info.filter((l) => /wait for its disk/.test(l))
    assert.equal(said.length, 1, info.join('\n'))
    assert.ok(said[0]!.startsWith(`writes to ${dirname(out)} `), said[0])
    assert.ok(debug.some((l) => /slept \d+ ms in the kernel within a second .*through the thread pool for 1 s/.test(l)), debug.join('\n'))
    // The pull did not write directly throughout: most writes went through the pool.
    assert.ok(direct < 8, `${direct} direct writes`)
  })

  it('says it once per pull, also when the pull starts over (the file changed on the server)', async () => {
    const changed = makeContent(8 * 1024 * 1024, 22)
    const m = await mirror({changeAfter: {requests: 2, content: changed}})
    const asleep = new Int32Array(new SharedArrayBuffer(4))
    const throttled: typeof writevSync = (fd, buffers, position) => {
      Atomics.wait(asleep, 0, 0, 300)
      return writevSync(fd, buffers, position ?? undefined)
    }
    const info: string[] = []
    const result = await pull(
      {url: m.url, output: join(tempDir('write-gate'), 'model.bin'), connections: 4, chunkSize: 1024 * 1024, threads: 0, openPartFile: partFileOpener(undefined, throttled)},
      {info: (l) => info.push(l), warn: (l) => info.push(l)},
    )
    assert.equal(result.sha256, sha256(changed))
    assert.ok(info.some((l) => /starting over/.test(l)), info.join('\n'))
    assert.equal(info.filter((l) => /wait for its disk/.test(l)).length, 1, info.join('\n'))
  })

  it('adds no connections while the disk sets the pace, where more would have raised the network rate', async () => {
    // 2 MiB/s a connection: from 2 connections, each added one raises the rate, and the ramp adds them.
    const m = await mirror({perConnectionRate: 2 * 1024 * 1024})
    const pullWith = async (writeDirect: typeof writevSync) => {
      const info: string[] = []
      const result = await pull(
        {url: m.url, output: join(tempDir('write-gate'), 'model.bin'), connections: 2, maxConnections: 16, chunkSize: 1024 * 1024, threads: 0, openPartFile: partFileOpener(undefined, writeDirect)},
        {info: (l) => info.push(l)},
      )
      assert.equal(result.sha256, sha256(content))
      return {connections: result.connections, slow: info.some((l) => /wait for its disk/.test(l))}
    }
    const asleep = new Int32Array(new SharedArrayBuffer(4))
    const throttled: typeof writevSync = (fd, buffers, position) => {
      Atomics.wait(asleep, 0, 0, 300)
      return writevSync(fd, buffers, position ?? undefined)
    }
    const fast = await pullWith(writevSync)
    assert.equal(fast.slow, false)
    assert.ok(fast.connections > 2, `the ramp adds connections on this path (${fast.connections})`)
    const slow = await pullWith(throttled)
    assert.equal(slow.slow, true)
    assert.equal(slow.connections, 2)
  })
})
