import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {MtuneError} from '../src/lib/errors.js'
import {formatBytes, formatDuration, formatElapsed, parseRate, parseSize} from '../src/lib/units.js'
import {createReporter} from '../src/lib/ui/progress.js'
import type {Progress} from '../src/lib/transfer/pull-types.js'

describe('parseSize', () => {
  it('reads binary multiples the way aria2 and curl users type them', () => {
    assert.equal(parseSize('512K'), 512 * 1024)
    assert.equal(parseSize('64M'), 64 * 1024 ** 2)
    assert.equal(parseSize('2G'), 2 * 1024 ** 3)
    assert.equal(parseSize('1.5GiB'), 1.5 * 1024 ** 3)
    assert.equal(parseSize('100MB'), 100 * 1024 ** 2)
    assert.equal(parseSize('4096'), 4096)
    assert.equal(parseSize(' 8m '), 8 * 1024 ** 2)
  })

  it('reads a size as bytes whatever the case of its b, and refuses bits', () => {
    assert.equal(parseSize('70gb'), 70 * 1024 ** 3, '--size 70gb is a model of 70 GB, not of 70 gigabits')
    assert.equal(parseSize('2tb'), 2 * 1024 ** 4)
    assert.equal(parseSize('100Mb'), 100 * 1024 ** 2)
    assert.throws(() => parseSize('100Mbit', '--max-size'), /invalid --max-size "100Mbit": a size is in bytes, e\.g\. 100M$/)
  })

  it('rejects what is not a size with a usage error that shows an example', () => {
    for (const bad of ['', 'abc', '-1M', '10Q', '1..5M', 'M']) {
      assert.throws(() => parseSize(bad, '--chunk-size'), (e: unknown) => {
        assert.ok(e instanceof MtuneError)
        assert.equal(e.exitCode, 2)
        assert.match(e.message, /--chunk-size/)
        assert.match(e.message, /e\.g\. 512K/)
        return true
      })
    }
  })
})

describe('parseRate', () => {
  it('accepts /s and ps suffixes', () => {
    assert.equal(parseRate('10M/s'), 10 * 1024 ** 2)
    assert.equal(parseRate('100Mbps'), 12_500_000)
    assert.equal(parseRate('400Mbit'), 50_000_000)
  })

  it('reads a lower-case b as bits, decimal, as link speeds are quoted', () => {
    assert.equal(parseRate('100Mb'), 12_500_000)
    assert.equal(parseRate('1Gbit'), 125_000_000)
    assert.equal(parseRate('400mbps'), 50_000_000)
    assert.equal(parseRate('1.25GB/s'), 1.25 * 1024 ** 3)
  })
})

describe('formatting', () => {
  it('formats sizes and durations for people', () => {
    assert.equal(formatBytes(512), '512 B')
    assert.equal(formatBytes(1536), '1.5 KiB')
    assert.equal(formatBytes(512 * 1024 ** 2), '512 MiB')
    assert.equal(formatElapsed(0.42), '0.4s')
    assert.equal(formatElapsed(9.5), '9.5s')
    assert.equal(formatElapsed(59), '59s')
    assert.equal(formatDuration(59), '59s')
    assert.equal(formatDuration(125), '2m05s')
    assert.equal(formatDuration(7300), '2h01m')
    assert.equal(formatDuration(Number.NaN), '--')
  })
})

describe('progress lines when piped', () => {
  it('name the connections, and once every byte is in and none is open, the check that follows', () => {
    const lines: string[] = []
    const stream = {write: (s: string) => lines.push(s)} as unknown as NodeJS.WriteStream
    // A line at once, whenever the test runs (the interval counts from the process's start).
    process.env.MTUNE_PROGRESS_INTERVAL_MS = '1'
    const at = (p: Partial<Progress>) => {
      createReporter('plain', stream).progress({size: 100 * 1024 * 1024, done: 0, rate: 1024 * 1024, connections: 0, elapsedMs: 1000, ...p})
      return lines.at(-1)!.trim()
    }
    assert.match(at({done: 50 * 1024 * 1024, connections: 16, etaSeconds: 50}), /^progress 50\.0% 50\.0 MiB\/100 MiB .* connections 16$/)
    assert.match(at({done: 100 * 1024 * 1024, etaSeconds: 0}), /^progress 100\.0% .* checking sha256$/, 'not "connections 0", which reads as a stall')
    assert.match(at({done: 1024, connections: 0}), /connections 0$/, 'before the first connection opens')
    assert.match(at({done: 100 * 1024 * 1024, unit: '3 files'}), /3 files$/)
  })
})
