import assert from 'node:assert/strict'
import {chownSync, lstatSync, readFileSync, readdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {adviseGrid, answerCap, bufferVerdict, rankMirrors, stat} from '../src/lib/bench/decide.js'
import type {Cell} from '../src/lib/bench/grid.js'
import {runBench, type BenchReport} from '../src/lib/bench/run.js'
import {measureDiskWrite} from '../src/lib/bench/disk.js'
import {renderBench} from '../src/lib/ui/bench-output.js'
import {systemReader} from '../src/lib/system/reader.js'
import {runCli, startCli} from './support/cli.js'
import {makeContent, mirrors, startMirror} from './support/mirror-server.js'
import {tempDir} from './support/temp.js'

const MiB = 1024 * 1024
const mirror = mirrors(makeContent(64 * MiB, 51), after)
const r = systemReader()

describe('bench decisions', () => {
  const cell = (connections: number, chunkSize: number, throughputBps: number): Cell => ({connections, chunkSize, bytes: 1, seconds: 1, throughputBps, requests: 1, errors: 0, throttled: false})
  const fmt = (n: number) => `${n}`

  it('finds the knee: the fewest connections within 95% of the best', () => {
    const cells = [cell(1, MiB, 10), cell(2, MiB, 19), cell(4, MiB, 38), cell(4, 4 * MiB, 39), cell(8, MiB, 40), cell(16, MiB, 40.5)]
    const a = adviseGrid(cells, fmt, fmt)!
    assert.equal(a.connections, 4)
    assert.equal(a.chunkSize, 4 * MiB)
    assert.match(a.reason, /^4 x 4194304 reach 39, 96% of the best \(40\.5 at 16 x 1048576\); 2 connections reach only 19$/)
  })

  it('recommends no chunk larger than what the mirror answers of a range', () => {
    const cells = [cell(2, MiB, 10), {...cell(2, 16 * MiB, 20), answeredAtMost: 4 * MiB}, cell(4, MiB, 12)]
    assert.equal(answerCap(cells), 4 * MiB)
    assert.equal(answerCap([cell(2, MiB, 10)]), undefined)
    const a = adviseGrid(cells, fmt, fmt, answerCap(cells))!
    assert.equal(a.chunkSize, 4 * MiB)
    assert.match(a.reason, /; the mirror answers at most 4194304 of a range, so each 16777216 asked came as 4194304$/)
    assert.equal(adviseGrid([cell(2, MiB, 10)], fmt, fmt, 4 * MiB)!.chunkSize, MiB, 'a smaller chunk is kept')
  })

  it('ranks working mirrors by one-stream speed, then first byte; failures last', () => {
    const m = (url: string, ok: boolean, t = 0, ttfb = 0) => ({url, ok, throughputBps: stat([t]), ttfbMs: stat([ttfb])})
    const ranked = rankMirrors([m('dead', false), m('slow', true, 10, 5), m('fast', true, 100, 50), m('fast-near', true, 98, 10)])
    assert.deepEqual(ranked.map((x) => x.url), ['fast-near', 'fast', 'slow', 'dead'])
  })

  it('says whether TCP buffers carry the path', () => {
    const v = bufferVerdict(1.25e9, 100, 4 * MiB, 32 * MiB)
    assert.equal(v.bdp, 125_000_000)
    assert.equal(v.ok, false)
    assert.ok(Math.abs(v.perStreamCapBps! - 41_943_040) < 1)
    assert.equal(bufferVerdict(1.25e8, 10, 64 * MiB, 64 * MiB).ok, true)
  })
})

describe('bench --disk', () => {
  it('measures flushed sequential writes within its time, and leaves nothing behind', async () => {
    const d = tempDir('disk')
    const all = await measureDiskWrite(d, {bytes: 80 * 1024 * 1024, timeMs: 60_000})
    assert.equal(all.bytes, 80 * 1024 * 1024)
    assert.ok(all.throughputBps > 0)
    // Flushed as it goes: a time limit is not overrun by one flush of everything the page cache took.
    const capped = await measureDiskWrite(d, {bytes: 4 * 1024 ** 3, timeMs: 200})
    assert.ok(capped.seconds < 2, `${capped.bytes} bytes in ${capped.seconds} s`)
    assert.deepEqual(readdirSync(d), [])
  })
})

describe('bench output', () => {
  it('runs a failed mirror\'s reason on past the columns instead of widening them', () => {
    const reason = 'the proxy closed the connection instead of opening a tunnel to mirror.example:80 (it may refuse that host without saying so, or not reach it)'
    const report: BenchReport = {
      version: 1,
      measuredAt: '2026-12-01T00:00:00.000Z',
      mirrors: [
        {url: 'http://fast.example/m.bin', ok: true, dnsMs: stat([1]), connectMs: stat([2]), ttfbMs: stat([3]), throughputBps: stat([100e6, 120e6])},
        {url: 'http://mirror.example/m.bin', ok: false, reason},
      ],
      grids: [],
      budget: {ms: 1000, usedMs: 10, maxBytes: 1e9, usedBytes: 1e6},
      interrupted: false,
    }
    // eslint-disable-next-line no-control-regex
    const lines = renderBench(report, false).replace(/\u001b\[[0-9;]*m/g, '').split('\n')
    const header = lines.find((l) => l.includes('mirror') && l.includes('DNS'))!
    assert.ok(header.length < 120, `the header keeps its width: ${header}`)
    assert.ok(lines.some((l) => l.includes('http://mirror.example/m.bin') && l.endsWith(reason)))
    const columnOf = (l: string) => l.indexOf('http://')
    assert.equal(columnOf(lines.find((l) => l.includes('fast.example'))!), columnOf(lines.find((l) => l.includes('mirror.example'))!), 'the URLs line up')
  })
})

describe('bench against test mirrors', () => {
  it('ranks the faster mirror first and finds the knee where the caps put it', async () => {
    const slow = await mirror({perConnectionRate: 1 * MiB, firstByteDelayMs: 100})
    const fast = await mirror({perConnectionRate: 2 * MiB, linkRate: 8 * MiB})
    const report = await runBench({mirrors: [slow.url, fast.url], connections: [1, 2, 4, 8], chunkSizes: [4 * MiB], budgetMs: 10_000, save: false}, r)
    assert.deepEqual(report.mirrors.map((m) => m.url), [fast.url, slow.url])
    assert.equal(report.recommendation?.mirror, fast.url)
    assert.equal(report.recommendation?.connections, 4, report.recommendation?.reason)
    assert.ok(report.link!.bandwidthBps > 6 * MiB)
    // The quickest handshake is the path's round trip; the others waited behind the probes beside them.
    const lead = report.mirrors.find((m) => m.url === fast.url)!
    assert.equal(report.link!.rttMs, Math.max(0.01, Math.round(lead.connectMs!.min * 100) / 100))
  })

  it('says when the mirror answers only the start of a range, and keeps the chunk to it', async () => {
    const m = await mirror({maxRange: 2 * MiB})
    const report = await runBench({mirrors: [m.url], connections: [1, 2], chunkSizes: [MiB, 8 * MiB], budgetMs: 4_000, maxBytes: 48 * MiB, save: false}, r)
    const grid = report.grids[0]!
    assert.equal(grid.answeredAtMost, 2 * MiB)
    assert.ok(report.recommendation!.chunkSize <= 2 * MiB, report.recommendation!.reason)
    assert.ok(m.bytesSent <= 48 * MiB)
    assert.match(renderBench(report, false), /! this mirror answers at most 2\.0 MiB of a range per request: the chunk sizes above it measure 2\.0 MiB/)
  })

  it('stays within its time and byte budgets', async () => {
    const m = await mirror()
    const started = performance.now()
    const report = await runBench({mirrors: [m.url], budgetMs: 3_000, maxBytes: 24 * MiB, save: false}, r)
    const seconds = (performance.now() - started) / 1000
    assert.ok(seconds < 3 + 2, `took ${seconds.toFixed(1)} s of a 3 s budget`)
    assert.ok(m.bytesSent <= 24 * MiB, `the mirror sent ${m.bytesSent} bytes of a ${24 * MiB} budget`)
    assert.equal(report.budget.maxBytes, 24 * MiB)
    assert.ok(report.budget.usedBytes <= 24 * MiB)
  })

  it('gives every cell its share of --max-bytes on a fast mirror, and says which cells could not fit', async () => {
    // Uncapped on loopback: before, the first cell spent the whole budget and the grid was one cell.
    const m = await mirror()
    const maxBytes = 96 * MiB
    const report = await runBench({mirrors: [m.url], connections: [1, 2, 4, 8], chunkSizes: [MiB, 4 * MiB, 16 * MiB], budgetMs: 10_000, maxBytes, save: false}, r)
    const grid = report.grids[0]!
    for (const n of [1, 2, 4]) assert.ok(grid.cells.some((c) => c.connections === n && c.chunkSize === MiB && c.bytes > 0), `${n} x 1 MiB measured: ${JSON.stringify(grid.cells.map((c) => [c.connections, c.chunkSize, c.bytes]))}`)
    assert.ok(grid.skipped.some((s) => s.connections === 8 && s.chunkSize === 16 * MiB), '8 x 16 MiB cannot fit in any share')
    for (const s of grid.skipped) assert.ok(s.connections * s.chunkSize > s.share, `${s.connections} x ${s.chunkSize} fits ${s.share}`)
    assert.ok(m.bytesSent <= maxBytes, `the mirror sent ${m.bytesSent} bytes of a ${maxBytes} budget`)
    assert.match(renderBench(report, false), /! not measured: .*8 x 16\.0 MiB.*: one request on each connection needs more than the cell's share of --max-bytes \(.*\); a larger --max-bytes/)
  })

  it('reports each failing mirror with its reason, and leaves a 429 mirror alone', async () => {
    const ok = await mirror()
    const missing = await mirror({fault: () => ({status: 404})})
    const noRange = await mirror({ignoreRange: true})
    const limited = await mirror({fault: () => ({status: 429, retryAfter: '120'})})
    const report = await runBench({mirrors: [ok.url, missing.url, noRange.url, limited.url, 'http://127.0.0.1:9/x'], connections: [1], chunkSizes: [MiB], budgetMs: 4_000, save: false}, r)
    const reason = (url: string) => report.mirrors.find((x) => x.url === url)!.reason
    assert.equal(report.mirrors[0].url, ok.url)
    assert.match(reason(missing.url)!, /HTTP 404/)
    assert.match(reason(noRange.url)!, /no range support/)
    assert.match(reason(limited.url)!, /rate limited/)
    assert.match(reason('http://127.0.0.1:9/x')!, /connection refused/)
    assert.ok(limited.requests.length <= 1, `a rate-limited mirror got ${limited.requests.length} requests`)
  })
})

describe('mtune bench (CLI)', () => {
  it("saves its results, which doctor then uses for the buffer check; as root in another user's cache folder, as theirs", async () => {
    const m = await mirror({perConnectionRate: 4 * MiB})
    // A cache folder another user owns (sudo -E mtune bench in the user's home): what is made in it is that user's.
    const home = tempDir('home')
    const root = process.getuid?.() === 0
    if (root) chownSync(home, 65534, 65534)
    const cache = join(home, '.cache')
    const b = await runCli(['bench', '--mirror', m.url, '--connections', '1,2', '--chunk-size', '1M', '--duration', '3', '--json'], {XDG_CACHE_HOME: cache})
    assert.equal(b.code, 0, b.stderr)
    const report = JSON.parse(b.stdout)
    assert.equal(report.savedTo, join(cache, 'mtune', 'bench.json'))
    for (const path of [cache, join(cache, 'mtune'), report.savedTo]) assert.equal(lstatSync(path).uid, root ? 65534 : process.getuid?.(), path)
    assert.deepEqual(JSON.parse(readFileSync(report.savedTo, 'utf8')).link, report.link)
    const d = await runCli(['doctor', 'network', '--json'], {XDG_CACHE_HOME: cache})
    assert.equal(JSON.parse(d.stdout).link.source, 'bench')
  })

  it('does not take a small file for a measurement of the link, nor save it over the last one', async () => {
    const cache = tempDir('xdg')
    const big = await mirror({perConnectionRate: 4 * MiB})
    assert.equal((await runCli(['bench', '--mirror', big.url, '--connections', '1', '--chunk-size', '1M', '--duration', '2'], {XDG_CACHE_HOME: cache})).code, 0)
    const saved = readFileSync(join(cache, 'mtune', 'bench.json'), 'utf8')
    const small = await startMirror({content: makeContent(64 * 1024, 52)})
    after(() => small.close())
    const b = await runCli(['bench', '--mirror', small.url, '--connections', '1,2', '--chunk-size', '1M', '--duration', '2', '--json'], {XDG_CACHE_HOME: cache})
    assert.equal(b.code, 0, b.stderr)
    const report = JSON.parse(b.stdout)
    assert.equal(report.link, undefined)
    assert.deepEqual(report.tooSmall, {url: small.url, size: 64 * 1024, needed: 8 * MiB})
    assert.equal(report.savedTo, undefined)
    assert.deepEqual([report.grids, report.recommendation], [[], undefined], 'no connections x chunk sizes for a file of one request')
    // Each of the 3 probes reserved up to 4 MiB, and a 64 KiB file could send no more than itself.
    assert.ok(report.budget.usedBytes <= 3 * 64 * 1024, `used ${report.budget.usedBytes} bytes of the budget`)
    assert.equal(readFileSync(join(cache, 'mtune', 'bench.json'), 'utf8'), saved, 'the last measurement stays')
    const text = await runCli(['bench', '--mirror', small.url, '--connections', '1', '--chunk-size', '1M', '--duration', '1'], {XDG_CACHE_HOME: cache})
    assert.match(text.stdout, /is 64\.0 KiB: too small to measure the link, connections or chunk sizes \(8\.0 MiB or more: a model's weights\); not saved/)
  })

  it('measures a mirror that wants the credentials written in its URL, and never shows or saves them', async () => {
    const basic = `Basic ${Buffer.from('ops:s3cret-pw').toString('base64')}`
    const m = await mirror({authorize: (req) => (req.headers.authorization === basic ? undefined : 401)})
    const cache = tempDir('xdg')
    const withCredentials = m.url.replace('http://', 'http://ops:s3cret-pw@')
    for (const json of [true, false]) {
      const b = await runCli(['bench', '--mirror', withCredentials, '--connections', '1,2', '--chunk-size', '1M', '--duration', '3', ...(json ? ['--json'] : [])], {XDG_CACHE_HOME: cache})
      assert.equal(b.code, 0, b.stderr)
      assert.doesNotMatch(b.stdout + b.stderr, /s3cret/)
      if (json) assert.deepEqual(JSON.parse(b.stdout).mirrors.map((x: {url: string; ok: boolean}) => [x.url, x.ok]), [[m.url, true]])
    }
    assert.doesNotMatch(readFileSync(join(cache, 'mtune', 'bench.json'), 'utf8'), /s3cret/)
    assert.ok(m.requests.length > 3 && m.requests.every((q) => q.authorization === basic))
  })

  it('prints a table and a recommendation, and refuses bad lists', async () => {
    const m = await mirror()
    // A cache directory that cannot be made (a file is in the way, as a read-only home would be).
    const blocked = join(tempDir('xdg'), 'file')
    writeFileSync(blocked, 'x')
    const b = await runCli(['bench', '--mirror', m.url, '--connections', '1,2', '--chunk-size', '1M,4M', '--duration', '3'], {XDG_CACHE_HOME: blocked})
    assert.equal(b.code, 0, b.stderr)
    assert.match(b.stdout, new RegExp(`Not saved to ${blocked}/mtune/bench\\.json \\(ENOTDIR\\): doctor, tune and pull --auto will not see these results`))
    assert.match(b.stdout, /Connections x chunk size on/)
    assert.match(b.stdout, /Recommended: (1 connection|[2-9] connections) x [\d.]+ MiB chunks/)
    const requests = m.requests.length
    const bads: Array<[string[], RegExp]> = [
      [['--connections', '1,x'], /invalid --connections "x" in "1,x": give a comma-separated list, each a count from 1 to 256/],
      [['--connections', '0'], /each a count from 1 to 256/],
      [['--chunk-size', '1Q'], /invalid --chunk-size "1Q"/],
      // A request per kilobyte measures the server's patience, not the path: as pull's, 64K or more.
      [['--chunk-size', '4M,1K'], /invalid --chunk-size "1K" in "4M,1K": give a comma-separated list, each a size of 64K or more/],
      [['--max-bytes', '10K'], /--max-bytes 10K is too small/],
      [['--disk', join(tempDir('xdg'), 'missing')], /no such directory/],
      // statfs says /proc has no blocks: it ended in "unexpected error: ENOENT" after the probes.
      [['--disk', '/proc'], /^Error: invalid --disk "\/proc": a kernel filesystem, not a disk; give the directory models will be written to$/m],
    ]
    for (const [bad, said] of bads) {
      const e = await runCli(['bench', '--mirror', m.url, ...bad])
      assert.equal(e.code, 2, `${bad.join(' ')}: ${e.stderr}`)
      assert.match(e.stderr, said, bad.join(' '))
    }
    const disk = await runCli(['bench', '--mirror', m.url, '--disk', '/nonexistent-mtune-dir'])
    assert.match(disk.stderr, /invalid --disk "\/nonexistent-mtune-dir": no such directory/)
    // An endpoint lists an hf:// mirror: with none among the mirrors it would mean nothing.
    assert.match((await runCli(['bench', '--mirror', m.url, '--endpoint', 'https://hf-mirror.com'])).stderr, /--endpoint gives more hubs to list an hf:\/\/ mirror on, and no --mirror is one/)
    assert.equal(m.requests.length, requests, 'refused before any measuring')
  })

  it('Ctrl-C prints what was measured so far', async () => {
    const m = await mirror({perConnectionRate: 2 * MiB})
    const run = startCli(['bench', '--mirror', m.url, '--duration', '120'], {XDG_CACHE_HOME: tempDir('xdg')})
    const deadline = Date.now() + 30_000
    // Three probes, then the grid's first requests: measuring is under way.
    while (m.requests.length < 6 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50))
    run.child.kill('SIGINT')
    const out = await run.done
    assert.equal(out.code, 130, out.stderr)
    assert.match(out.stdout, /Interrupted: these are the measurements made so far/)
    assert.match(out.stdout, /Mirrors/)
  })
})
