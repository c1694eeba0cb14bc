import assert from 'node:assert/strict'
import {existsSync, readFileSync, readdirSync} from 'node:fs'
import {createServer} from 'node:http'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {runCli, startCli} from './support/cli.js'
import {makeContent, mirrors, sha256} from './support/mirror-server.js'
import {tempDir} from './support/temp.js'

const MiB = 1024 * 1024
const content = makeContent(24 * MiB, 61)
const digest = sha256(content)
const mirror = mirrors(content, after)
const dir = () => tempDir('auto')
/** Each run its own cache, so that no test reuses another's bench results. */
const env = () => ({XDG_CACHE_HOME: dir()})

describe('mtune pull --auto', () => {
  it('picks the faster mirror and the connection count its caps call for, then pulls', async () => {
    const slow = await mirror({perConnectionRate: 1 * MiB, linkRate: 2 * MiB, firstByteDelayMs: 80})
    const fast = await mirror({perConnectionRate: 2 * MiB, linkRate: 8 * MiB})
    const out = dir()
    const r = await runCli(['pull', '--auto', slow.url, '--mirror', fast.url, '--no-public-mirrors', '--budget', '5', '-o', out, '--json'], env())
    assert.equal(r.code, 0, r.stderr)
    const doc = JSON.parse(r.stdout)
    assert.equal(doc.decision.chosen.url, fast.url)
    assert.equal(doc.decision.connections, 4, doc.decision.reasons.connections)
    assert.match(doc.decision.reasons.mirror, /fastest of 2 working candidates/)
    assert.deepEqual(doc.decision.fallbacks.map((f: {url: string}) => f.url), [slow.url])
    assert.equal(doc.result.sha256, digest)
    assert.equal(sha256(readFileSync(join(out, 'model.bin'))), digest)
    // Run again (a job at every boot): the file it pulled from the mirror it chose is kept, recorded under the URL given.
    const cache = env()
    assert.equal((await runCli(['pull', '--auto', slow.url, '--mirror', fast.url, '--no-public-mirrors', '--budget', '2', '-o', join(out, 'again.bin')], cache)).code, 0)
    const again = await runCli(['pull', '--auto', slow.url, '--mirror', fast.url, '--no-public-mirrors', '--budget', '2', '-o', join(out, 'again.bin')], cache)
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stderr, /again\.bin is the file mtune pulled from this URL on .*: kept/)
  })

  it('takes a --mirror that is the URL itself as one candidate, as a plain pull does', async () => {
    const m = await mirror()
    const r = await runCli(['pull', '--auto', m.url, '--mirror', m.url, '--no-public-mirrors', '--budget', '1', '--dry-run', '--json'], env())
    assert.equal(r.code, 0, r.stderr)
    const doc = JSON.parse(r.stdout)
    assert.equal(doc.decision.candidates.length, 1, JSON.stringify(doc.decision.candidates))
    assert.deepEqual(doc.decision.fallbacks, [], 'not its own failover')
  })

  it('decides on and pulls from mirrors that want the credentials in their URLs, showing none', async () => {
    const basic = (pair: string) => `Basic ${Buffer.from(pair).toString('base64')}`
    const a = await mirror({perConnectionRate: 2 * MiB, authorize: (req) => (req.headers.authorization === basic('a:pw-one') ? undefined : 401)})
    const b = await mirror({perConnectionRate: 1 * MiB, authorize: (req) => (req.headers.authorization === basic('b:pw-two') ? undefined : 401)})
    const out = dir()
    const args = [a.url.replace('http://', 'http://a:pw-one@'), '--mirror', b.url.replace('http://', 'http://b:pw-two@'), '--no-public-mirrors', '--budget', '3', '-o', out]
    const r = await runCli(['pull', '--auto', ...args, '--json'], env())
    assert.equal(r.code, 0, r.stderr)
    const doc = JSON.parse(r.stdout)
    assert.deepEqual([doc.decision.chosen.url, ...doc.decision.fallbacks.map((f: {url: string}) => f.url)].sort(), [a.url, b.url].sort())
    assert.equal(doc.result.sha256, digest)
    assert.doesNotMatch(r.stdout + r.stderr, /pw-one|pw-two/)
    const text = await runCli(['pull', '--auto', ...args, '--dry-run'], env())
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stderr, /Decision for http:\/\/127\.0\.0\.1:\d+\/file\/model\.bin:/)
    assert.doesNotMatch(text.stdout + text.stderr, /pw-one|pw-two/)
  })

  it('fails over to the next mirror when the chosen one dies, without refetching what is done', async () => {
    // Link caps make the pull last long enough for the chosen mirror to die half-way.
    const fast = await mirror({perConnectionRate: 2 * MiB, linkRate: 4 * MiB})
    const slow = await mirror({perConnectionRate: 1 * MiB, linkRate: 3 * MiB, firstByteDelayMs: 50})
    const run = startCli(['pull', '--auto', fast.url, '--mirror', slow.url, '--no-public-mirrors', '--budget', '3', '-o', dir()], env())
    let stderr = ''
    run.child.stderr!.on('data', (d) => (stderr += d))
    const deadline = Date.now() + 60_000
    while (!/Decision for/.test(stderr) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20))
    const base = {fast: fast.bytesSent, slow: slow.bytesSent}
    while (fast.bytesSent - base.fast < 6 * MiB && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20))
    fast.setOptions({fault: () => ({reset: 0})})
    fast.dropConnections()
    const r = await run.done
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /dropping source .*failures in a row.*switching to the other sources/)
    const pulled = fast.bytesSent - base.fast + slow.bytesSent - base.slow
    assert.ok(pulled <= content.length * 1.15, `fetched ${(pulled / content.length).toFixed(2)} x the file after the decision`)
  })

  it('stops before downloading when the preflight fails (too little space)', async () => {
    const huge = 100 * 1024 ** 4
    const requests: string[] = []
    const server = createServer((req, res) => {
      requests.push(req.headers.range ?? '')
      const [, from, to] = /bytes=(\d+)-(\d*)/.exec(req.headers.range ?? '') ?? ['', '0', '']
      const end = to ? Number(to) : huge - 1
      res.writeHead(206, {'content-range': `bytes ${from}-${end}/${huge}`})
      res.end(Buffer.alloc(Math.min(64 * 1024, end - Number(from) + 1)))
    })
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res))
    after(() => server.close())
    const out = dir()
    const url = `http://127.0.0.1:${(server.address() as {port: number}).port}/huge.bin`
    const r = await runCli(['pull', '--auto', url, '--no-public-mirrors', '--budget', '2', '-o', out], env())
    assert.equal(r.code, 5, r.stderr)
    assert.match(r.stderr, /^Error: preflight failed, nothing was downloaded: Free space: .* 100 TiB/m)
    assert.match(r.stderr, /fix: free /)
    assert.deepEqual(readdirSync(out), [], 'nothing written')
  })

  it('--dry-run stops after the decision; --json gives it as one document', async () => {
    const m = await mirror()
    const out = dir()
    const r = await runCli(['pull', '--auto', m.url, '--no-public-mirrors', '--budget', '2', '-o', out, '--dry-run'], env())
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /Decision for .*\n.*mirror {7}http:\/\/127\.0\.0\.1/)
    assert.match(r.stderr, /connections {2}\d+, chunks of/)
    assert.match(r.stderr, /expected {5}24\.0 MiB to fetch, about \d+ s/)
    assert.match(r.stderr, /host tuning/)
    assert.ok(!existsSync(join(out, 'model.bin')) && readdirSync(out).length === 0)
    const j = await runCli(['pull', '--auto', m.url, '--no-public-mirrors', '--budget', '2', '-o', out, '--dry-run', '--json'], env())
    const doc = JSON.parse(j.stdout)
    assert.equal(doc.dryRun, true)
    for (const key of ['chosen', 'connections', 'chunkSize', 'reasons', 'preflight', 'tuning', 'candidates', 'bench']) assert.ok(key in doc.decision, key)
  })

  it('reuses a recent mtune bench of the same mirrors instead of measuring again', async () => {
    const m = await mirror()
    const cache = env()
    const b = await runCli(['bench', '--mirror', m.url, '--connections', '1,2', '--chunk-size', '1M', '--duration', '2'], cache)
    assert.equal(b.code, 0, b.stderr)
    const before = m.requests.length
    const r = await runCli(['pull', '--auto', m.url, '--no-public-mirrors', '-o', dir(), '--dry-run', '--json'], cache)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(JSON.parse(r.stdout).decision.bench.reused, true)
    assert.equal(m.requests.length, before, 'no request to measure again')
  })

  it('pulls from a server that ignores Range over one stream, as a plain pull does, and says why', async () => {
    const whole = await mirror({ignoreRange: true})
    const out = dir()
    const r = await runCli(['pull', '--auto', whole.url, '--no-public-mirrors', '--budget', '3', '-o', out, '--json'], env())
    assert.equal(r.code, 0, r.stderr)
    const doc = JSON.parse(r.stdout)
    assert.equal(doc.decision.connections, 1)
    assert.match(doc.decision.reasons.mirror, /does not support ranges: one stream/)
    assert.deepEqual(doc.decision.fallbacks, [])
    assert.equal(sha256(readFileSync(join(out, 'model.bin'))), digest)
    const failing = await mirror({fault: () => ({status: 404})})
    const none = await runCli(['pull', '--auto', failing.url, '--no-public-mirrors', '--budget', '3', '-o', dir()], env())
    assert.equal(none.code, 3, 'nothing that answers is still an error')
  })

  it('--tune and several --endpoint need --auto', async () => {
    for (const args of [['--tune'], ['--endpoint', 'https://a', '--endpoint', 'https://b']]) {
      const r = await runCli(['pull', 'hf://acme/x', ...args])
      assert.equal(r.code, 2, r.stderr)
      assert.match(r.stderr, /need.* --auto/)
    }
  })

  it('refuses the flags of model sources where they would be ignored', async () => {
    for (const [source, flag, value] of [
      ['ollama://qwen3', '--include', '*.gguf'],
      ['ollama://qwen3', '--local-dir', 'x'],
      ['https://example.com/m.gguf', '--local-dir', 'x'],
      ['https://example.com/m.gguf', '--exclude', 'x'],
      ['https://example.com/m.gguf', '--verify', undefined],
    ] as const) {
      const r = await runCli(['pull', source, flag, ...(value ? [value] : []), '--auto'])
      assert.equal(r.code, 2, `${source} ${flag}: ${r.stderr}`)
      assert.match(r.stderr, new RegExp(`^Error: ${flag} (applies to hf:// and modelscope://|re-hashes the files of a model source)`), r.stderr)
    }
  })
})

describe('mtune pull --auto hf://', () => {
  it('picks the faster of two endpoints and lays the repo out in the cache', async () => {
    const {startCdn, startFakeHf} = await import('./support/fake-hubs.js')
    const weights = makeContent(8 * MiB, 71)
    const files = [
      {path: 'model.safetensors', content: weights, lfs: true},
      {path: 'config.json', content: Buffer.from('{}'), lfs: false},
    ]
    const commit = 'abcdefabcdefabcdefabcdefabcdefabcdefabcd'
    const slowCdn = await startCdn({perConnectionRate: 1 * MiB})
    const fastCdn = await startCdn({perConnectionRate: 4 * MiB})
    const slowHub = await startFakeHf([{id: 'acme/tiny', commit, files}], {cdn: slowCdn})
    const ggufs = [
      {path: 'tiny-Q4_K_M.gguf', content: makeContent(1 * MiB, 72), lfs: true},
      {path: 'tiny-Q8_0.gguf', content: makeContent(2 * MiB, 73), lfs: true},
    ]
    const fastHub = await startFakeHf([{id: 'acme/tiny', commit, files}, {id: 'acme/tiny-GGUF', commit, files: ggufs}], {cdn: fastCdn})
    after(() => Promise.all([slowCdn, fastCdn, slowHub, fastHub].map((s) => s.close())))
    const home = dir()
    const r = await runCli(['pull', '--auto', 'hf://acme/tiny', '--endpoint', fastHub.origin, '--no-public-mirrors', '--budget', '3', '--json'], {
      ...env(),
      HF_ENDPOINT: slowHub.origin,
      HF_HOME: home,
      HF_HUB_CACHE: join(home, 'hub'),
      HF_TOKEN: '',
    })
    assert.equal(r.code, 0, r.stderr)
    const doc = JSON.parse(r.stdout)
    assert.equal(doc.decision.chosen.label, fastHub.origin)
    assert.equal(doc.plan.layout, 'hf-cache')
    assert.equal(doc.files.length, 2)
    const snapshot = join(home, 'hub', 'models--acme--tiny', 'snapshots', commit)
    assert.ok(readFileSync(join(snapshot, 'model.safetensors')).equals(weights))

    // --include and --local-dir hold with --auto as without it: the files asked for, where asked.
    const tree = dir()
    const some = await runCli(['pull', '--auto', 'hf://acme/tiny', '--include', '*.json', '--local-dir', tree, '--no-public-mirrors', '--budget', '1', '--json'], {
      ...env(),
      HF_ENDPOINT: fastHub.origin,
      HF_HOME: home,
      HF_TOKEN: '',
    })
    assert.equal(some.code, 0, some.stderr)
    assert.equal(JSON.parse(some.stdout).plan.layout, 'directory')
    assert.deepEqual(readdirSync(tree).filter((n) => n !== '.cache'), ['config.json'], 'the selected file alone (beside huggingface_hub\'s .cache/)')

    // What the chosen plan has to say is said with --auto too, as without it.
    const gguf = await runCli(['pull', '--auto', 'hf://acme/tiny-GGUF', '--no-public-mirrors', '--budget', '1', '--dry-run'], {...env(), HF_ENDPOINT: fastHub.origin, HF_HOME: home, HF_TOKEN: ''})
    assert.equal(gguf.code, 0, gguf.stderr)
    assert.match(gguf.stderr, /this repo holds 2 GGUF variants \(3\.0 MiB in all\) and a runtime loads one: hf:\/\/acme\/tiny-GGUF:Q4_K_M/)
  })
})
