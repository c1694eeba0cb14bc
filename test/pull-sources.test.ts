import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {createServer} from 'node:http'
import {once} from 'node:events'
import type {AddressInfo} from 'node:net'
import {after, describe, it} from 'node:test'
import {runCli, startCli} from './support/cli.js'
import {gitSha1, startCdn, startFakeHf, startFakeModelscope, startFakeOllama, type FakeCdn, type HubRepo} from './support/fake-hubs.js'
import {makeContent} from './support/mirror-server.js'
import {aria2Control} from './support/aria2-control.js'
import {partsOf, plantOllamaPartial} from './support/ollama-partial.js'
import {tempDir} from './support/temp.js'

const MiB = 1024 * 1024
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const closers: Array<() => Promise<void>> = []
after(async () => Promise.all(closers.map((c) => c())))
const dir = () => tempDir('src')

async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

const COMMIT = '0123456789abcdef0123456789abcdef01234567'
const weights = makeContent(12 * MiB, 21)
const shard = makeContent(3 * MiB, 22)
const config = Buffer.from('{"model_type": "tiny"}\n')
const tokenizer = Buffer.from('{"vocab": {}}\n')

function repo(over: Partial<HubRepo> = {}): HubRepo {
  return {
    id: 'acme/tiny',
    commit: COMMIT,
    refs: {v1: COMMIT},
    files: [
      {path: 'model.safetensors', content: weights, lfs: true},
      {path: 'sub/shard.bin', content: shard, lfs: true},
      {path: 'config.json', content: config, lfs: false},
      {path: 'tok/tokenizer.json', content: tokenizer, lfs: false},
    ],
    ...over,
  }
}

async function hub(repos: HubRepo[], options: {token?: string; ttlMs?: number; rate?: number; hideExpiry?: boolean; rateLimitFirst?: number} = {}) {
  const cdn = await startCdn({ttlMs: options.ttlMs, perConnectionRate: options.rate, hideExpiry: options.hideExpiry})
  const hf = await startFakeHf(repos, {token: options.token, cdn, rateLimitFirst: options.rateLimitFirst})
  closers.push(() => cdn.close(), () => hf.close())
  const home = dir()
  const env = {HF_ENDPOINT: hf.origin, HF_HOME: home, HF_HUB_CACHE: join(home, 'hub'), HF_TOKEN: options.token ?? ''}
  return {cdn, hf, env, cache: join(home, 'hub', 'models--acme--tiny')}
}

function checkSnapshot(cache: string): void {
  const snapshot = join(cache, 'snapshots', COMMIT)
  const expect: Array<[string, Buffer, string]> = [
    ['model.safetensors', weights, `../../blobs/${sha256(weights)}`],
    ['sub/shard.bin', shard, `../../../blobs/${sha256(shard)}`],
    ['config.json', config, `../../blobs/${gitSha1(config)}`],
    ['tok/tokenizer.json', tokenizer, `../../../blobs/${gitSha1(tokenizer)}`],
  ]
  for (const [name, content, target] of expect) {
    const link = join(snapshot, name)
    assert.ok(lstatSync(link).isSymbolicLink(), `${name} is a symlink`)
    assert.equal(readlinkSync(link), target, `${name} points relatively into blobs/`)
    assert.ok(readFileSync(link).equals(content), `${name} has the right bytes`)
  }
  assert.ok(readdirSync(join(cache, 'blobs')).every((b) => /^[0-9a-f]{40}([0-9a-f]{24})?$/.test(b)), 'only verified blobs, no partial files')
}

describe('mtune pull hf://', () => {
  it('pulls a repo into the Hugging Face cache as the official client lays it out', async () => {
    const {cdn, hf, env, cache} = await hub([repo({private: true})], {token: 'hf_secret_token'})
    // As a Kubernetes secret or `echo > file` gives it: the newline is no part of the token.
    const r = await runCli(['pull', 'hf://acme/tiny', '--json'], {...env, HF_TOKEN: 'hf_secret_token\r\n'})
    assert.equal(r.code, 0, r.stderr)
    checkSnapshot(cache)
    assert.equal(readFileSync(join(cache, 'refs', 'main'), 'utf8'), COMMIT, 'refs/main holds the commit with no newline')
    const out = JSON.parse(r.stdout)
    assert.equal(out.layout, 'hf-cache')
    assert.equal(out.results.length, 4)
    assert.equal(cdn.authSeen, 0, 'the token never reached the CDN')
    assert.ok(hf.requests.every((q) => q.authorization === 'Bearer hf_secret_token'), 'the hub got the token on every request')
    // The small files came as the Hub sends them: a relative redirect into its /api/resolve-cache/, token and all.
    assert.deepEqual(hf.requests.filter((q) => q.path.startsWith('/api/resolve-cache/')).map((q) => q.path.split('?')[0]).sort(), [
      `/api/resolve-cache/models/acme/tiny/${COMMIT}/config.json`,
      `/api/resolve-cache/models/acme/tiny/${COMMIT}/tok/tokenizer.json`,
    ])
    assert.doesNotMatch(r.stdout + r.stderr, /hf_secret_token/)
  })

  it('a cache that cannot be created is one line and exit 5, before any download (not a spin: Node\'s recursive mkdir loops under /proc)', async () => {
    const {env, cdn} = await hub([repo()])
    const r = await runCli(['pull', 'hf://acme/tiny'], {...env, HF_HOME: '/proc/mtune-no-such-dir', HF_HUB_CACHE: ''})
    assert.equal(r.code, 5, r.stderr)
    assert.match(r.stderr, /cannot create \/proc\/mtune-no-such-dir \(directories cannot be made there\): set HF_HOME \(or HF_HUB_CACHE\) to a directory you can write, or pull with --local-dir DIR/)
    assert.equal(cdn.mirror.requests.length, 0)
  })

  it('a model larger than the disk is one line and exit 5, with nothing made and nothing fetched', async () => {
    const huge = repo({files: [{path: 'model.safetensors', content: weights, lfs: true, listedSize: 2 ** 50}]})
    const {env, cdn} = await hub([huge])
    const r = await runCli(['pull', 'hf://acme/tiny'], env)
    assert.equal(r.code, 5, r.stderr)
    assert.match(r.stderr, /^Error: not enough space in \S+models--acme--tiny for hf:\/\/acme\/tiny@main: 1024 TiB still needed, .* free; free some space, or pull it onto another disk: HF_HUB_CACHE=DIR/m)
    assert.ok(!existsSync(env.HF_HUB_CACHE), 'the cache was not made for a model that does not fit')
    const local = join(dir(), 'new', 'tree')
    const l = await runCli(['pull', 'hf://acme/tiny', '--local-dir', local], env)
    assert.equal(l.code, 5, l.stderr)
    assert.ok(!existsSync(dirname(local)), '--local-dir was not made either')
    assert.equal(cdn.mirror.requests.length, 0)
  })

  it('two pulls of one model into one cache at once (the ranks of a job) both succeed, each blob fetched once', async () => {
    const {env, cache, cdn} = await hub([repo()], {rate: 4 * MiB})
    const [a, b] = await Promise.all([runCli(['pull', 'hf://acme/tiny', '--json'], env), runCli(['pull', 'hf://acme/tiny', '--json'], env)])
    assert.equal(a.code, 0, a.stderr)
    assert.equal(b.code, 0, b.stderr)
    checkSnapshot(cache)
    assert.equal(readFileSync(join(cache, 'refs', 'main'), 'utf8'), COMMIT)
    const total = weights.length + shard.length + config.length + tokenizer.length
    // Twice the model would be 2x; what was cut in flight stays well below that.
    assert.ok(cdn.mirror.bytesSent < 1.5 * total, `the CDN sent ${(cdn.mirror.bytesSent / total).toFixed(2)} x the model`)
  })

  it('a pull that waits on another for files of the model says so once, and takes them from it', async () => {
    const {env, cache, cdn} = await hub([repo()])
    // The first crawls until the second is seen waiting on it.
    cdn.mirror.setOptions({linkRate: 1 * MiB})
    const first = startCli(['pull', 'hf://acme/tiny', '--quiet'], env)
    await until(() => existsSync(join(cache, 'blobs', `${sha256(weights)}.part.lock`)), 'the first to hold the biggest file')
    const second = startCli(['pull', 'hf://acme/tiny'], env)
    let said = ''
    second.child.stderr!.on('data', (d) => (said += d))
    await until(() => said.includes('is pulling files of'), 'the second to wait')
    cdn.mirror.setOptions({linkRate: undefined})
    const [a, b] = await Promise.all([first.done, second.done])
    assert.equal(a.code, 0, a.stderr)
    assert.equal(b.code, 0, b.stderr)
    assert.equal(b.stderr.match(/another mtune \(pid \d+\) is pulling files of hf:\/\/acme\/tiny@main: waiting for each of those, and taking it from that pull when it is done/g)?.length, 1, b.stderr)
    assert.doesNotMatch(b.stderr, /waiting for another mtune|another mtune pulled/, 'not a line per file')
    assert.match(b.stdout, /^✓ hf:\/\/acme\/tiny@main: (.*, )?[1-4] (pulled )?by another mtune while this one waited, verified/m)
    checkSnapshot(cache)
  })

  it('--limit-rate caps the whole model, not each of the files pulled at once', async () => {
    const files = [1, 2, 3, 4].map((i) => ({path: `model-0000${i}-of-00004.safetensors`, content: makeContent(3 * MiB, 60 + i), lfs: true}))
    const {env, cache} = await hub([repo({files})])
    const started = performance.now()
    const r = await runCli(['pull', 'hf://acme/tiny', '--limit-rate', '4M'], env)
    const seconds = (performance.now() - started) / 1000
    assert.equal(r.code, 0, r.stderr)
    assert.equal(readdirSync(join(cache, 'blobs')).length, 4)
    // 12 MiB at 4 MiB/s, less the cap's burst of 1 MiB, takes 2.75 s at least; a cap per file
    // (four files at once, as before) let them through in about half a second.
    assert.ok(seconds >= 2.5, `12 MiB at 4 MiB/s took ${seconds.toFixed(2)} s`)
  })

  it('skips what is present, and --include/--exclude choose files', async () => {
    const {env, cache, cdn, hf} = await hub([repo()])
    const first = await runCli(['pull', 'hf://acme/tiny@v1', '--include', '*.json', '--exclude', 'tok/*'], env)
    assert.equal(first.code, 0, first.stderr)
    assert.deepEqual(readdirSync(join(cache, 'snapshots', COMMIT)), ['config.json'])
    assert.equal(readFileSync(join(cache, 'refs', 'v1'), 'utf8'), COMMIT)
    const sent = cdn.mirror.bytesSent
    const again = await runCli(['pull', 'hf://acme/tiny', '--json'], env)
    assert.equal(again.code, 0, again.stderr)
    const out = JSON.parse(again.stdout)
    assert.equal(out.results.filter((x: {skipped: boolean}) => x.skipped).length, 1, 'config.json was already there')
    assert.equal(hf.requests.filter((q) => q.path.endsWith('/config.json')).length, 1, 'config.json was fetched once, by the first pull')
    // What the client took in is the missing files (a little more when a request was cut). The
    // server may have sent more into loopback socket buffers, which hold megabytes when a busy
    // client reads slowly; a whole second copy would still show.
    const missing = weights.length + shard.length + tokenizer.length
    const taken = out.results.reduce((n: number, x: {bytesFetched?: number}) => n + (x.bytesFetched ?? 0), 0)
    assert.ok(taken >= missing && taken <= missing * 1.1, `took in ${taken} of ${missing}`)
    const sentNow = cdn.mirror.bytesSent - sent
    assert.ok(sentNow >= weights.length + shard.length && sentNow < 2 * (weights.length + shard.length), `the CDN sent ${sentNow}`)
    checkSnapshot(cache)
    // Globs that match nothing are a mistake, said as one: not "already complete, 0 files".
    const none = await runCli(['pull', 'hf://acme/tiny', '--include', '*.gguf'], env)
    assert.equal(none.code, 2, none.stderr)
    assert.match(none.stderr, /^Error: no file of hf:\/\/acme\/tiny@main matches --include '\*\.gguf': list its files with mtune pull hf:\/\/acme\/tiny@main --dry-run$/m)
  })

  it('with HF_HUB_OFFLINE, or no route to the Hub, takes the cache\'s snapshot as huggingface_hub does', async () => {
    const {env, cache, hf} = await hub([repo()])
    assert.equal((await runCli(['pull', 'hf://acme/tiny'], env)).code, 0)
    const asked = hf.requests.length
    // An init container that pulls on every start, on a cluster with no route to the Hub.
    const offline = await runCli(['pull', 'hf://acme/tiny'], {...env, HF_HUB_OFFLINE: '1'})
    assert.equal(offline.code, 0, offline.stderr)
    assert.match(offline.stderr, /HF_HUB_OFFLINE is set: the cache's snapshot \(commit [0-9a-f]{12}, from the cache\) is taken as it is, the Hub not asked/)
    assert.match(offline.stdout, /^✓ hf:\/\/acme\/tiny@main: already complete, 4 files present/m)
    assert.equal(hf.requests.length, asked, 'the Hub was not asked')
    const unreachable = await runCli(['pull', 'hf://acme/tiny', 'config.json', '--json'], {...env, HF_ENDPOINT: 'http://127.0.0.1:9'})
    assert.equal(unreachable.code, 0, unreachable.stderr)
    const doc = JSON.parse(unreachable.stdout)
    assert.deepEqual(doc.results.map((r: {name: string; skipped: boolean}) => [r.name, r.skipped]), [['config.json', true]], 'the selection holds')
    assert.match(doc.warnings.join('\n'), /^cannot reach http:\/\/127\.0\.0\.1:9\/.*: the cache's snapshot of hf:\/\/acme\/tiny@main \(commit [0-9a-f]{12}, from the cache\) is taken as it is/m)
    // A Hub that answers 503 (an outage) is down too; one that refuses (not found) is not.
    const outage = createServer((req, res) => void res.writeHead(503, {'retry-after': '0'}).end()).listen(0, '127.0.0.1')
    closers.push(() => new Promise((r) => outage.close(() => r(undefined))))
    await once(outage, 'listening')
    const failing = await runCli(['pull', 'hf://acme/tiny'], {...env, HF_ENDPOINT: `http://127.0.0.1:${(outage.address() as AddressInfo).port}`})
    assert.equal(failing.code, 0, failing.stderr)
    assert.match(failing.stderr, /: HTTP 503: the cache's snapshot of hf:\/\/acme\/tiny@main/)
    const gone404 = createServer((req, res) => void res.writeHead(404, {'x-error-code': 'RepoNotFound'}).end()).listen(0, '127.0.0.1')
    closers.push(() => new Promise((r) => gone404.close(() => r(undefined))))
    await once(gone404, 'listening')
    const refused = await runCli(['pull', 'hf://acme/tiny'], {...env, HF_ENDPOINT: `http://127.0.0.1:${(gone404.address() as AddressInfo).port}`})
    assert.equal(refused.code, 3, 'the Hub says no such repo: the cache does not answer for that')
    assert.match(refused.stderr, /not found, or private/)
    // A bad file found offline cannot be fetched: said, exit 4.
    writeFileSync(join(cache, 'blobs', sha256(weights)), Buffer.alloc(weights.length))
    const bad = await runCli(['pull', 'hf://acme/tiny', '--verify'], {...env, HF_HUB_OFFLINE: '1'})
    assert.equal(bad.code, 4, bad.stderr)
    assert.match(bad.stderr, /^Error: model\.safetensors cannot be pulled again: HF_HUB_OFFLINE is set; unset it to fetch them from the Hub$/m)
    // Nothing complete in the cache: offline, said so; unreachable, the Hub's error stands.
    const none = await runCli(['pull', 'hf://acme/other'], {...env, HF_HUB_OFFLINE: '1'})
    assert.equal(none.code, 3)
    assert.match(none.stderr, /^Error: HF_HUB_OFFLINE is set and the Hugging Face cache \(.*\) has no complete snapshot of hf:\/\/acme\/other@main: unset HF_HUB_OFFLINE to pull it$/m)
    const gone = await runCli(['pull', 'hf://acme/tiny'], {...env, HF_ENDPOINT: 'http://127.0.0.1:9'})
    assert.equal(gone.code, 3, 'a dangling link: not complete, so the Hub was needed')
  })

  it('writes nothing for a complete model (a shared cache may be read-only), and says what it cannot write', async () => {
    const {env, cache} = await hub([repo()])
    assert.equal((await runCli(['pull', 'hf://acme/tiny@v1'], env)).code, 0)
    const snapshot = join(cache, 'snapshots', COMMIT)
    const before = ['model.safetensors', 'sub/shard.bin', 'refs'].map((p) => lstatSync(p === 'refs' ? join(cache, 'refs', 'v1') : join(snapshot, p), {bigint: true}))
    const again = await runCli(['pull', 'hf://acme/tiny@v1'], env)
    assert.equal(again.code, 0, again.stderr)
    const after = ['model.safetensors', 'sub/shard.bin', 'refs'].map((p) => lstatSync(p === 'refs' ? join(cache, 'refs', 'v1') : join(snapshot, p), {bigint: true}))
    assert.deepEqual(after.map((s) => [s.ino, s.mtimeNs]), before.map((s) => [s.ino, s.mtimeNs]), 'the links and the ref were left as they were')
    // A link that must be written and cannot be: one line, exit 5 (root writes anywhere, so a file is in the way).
    rmSync(join(snapshot, 'sub'), {recursive: true})
    writeFileSync(join(snapshot, 'sub'), 'in the way')
    const blocked = await runCli(['pull', 'hf://acme/tiny'], env)
    assert.equal(blocked.code, 5, blocked.stderr)
    assert.match(blocked.stderr, /^Error: cannot write \S+\/snapshots\/[0-9a-f]{40}\/sub \(a file is in the way\): set HF_HOME/m)
  })

  it('pulls one file or folder named after the repo (hf://ORG/NAME[@REV]/PATH)', async () => {
    const {env, cache} = await hub([repo()])
    const one = await runCli(['pull', 'hf://acme/tiny@v1/sub/shard.bin'], env)
    assert.equal(one.code, 0, one.stderr)
    assert.match(one.stdout, /hf:\/\/acme\/tiny@v1\/sub\/shard\.bin: 1 pulled/)
    assert.deepEqual(readdirSync(join(cache, 'snapshots', COMMIT)), ['sub'])
    assert.ok(readFileSync(join(cache, 'snapshots', COMMIT, 'sub', 'shard.bin')).equals(shard))
    const folder = await runCli(['pull', 'hf://acme/tiny/tok', '--json'], env)
    assert.equal(folder.code, 0, folder.stderr)
    assert.deepEqual(JSON.parse(folder.stdout).files.map((f: {name: string}) => f.name), ['tok/tokenizer.json'])
    const none = await runCli(['pull', 'hf://acme/tiny/tokens'], env)
    assert.equal(none.code, 2, none.stderr)
    assert.match(none.stderr, /^Error: no file of hf:\/\/acme\/tiny@main matches the path tokens: list its files with mtune pull hf:\/\/acme\/tiny@main --dry-run$/m)
  })

  it('pulls the files named after the repo, as hf download REPO FILE... does; refuses a second URL or model', async () => {
    const {env, cache} = await hub([repo()])
    const some = await runCli(['pull', 'hf://acme/tiny@v1', 'config.json', 'tok', '--json'], env)
    assert.equal(some.code, 0, some.stderr)
    assert.deepEqual(JSON.parse(some.stdout).files.map((f: {name: string}) => f.name).sort(), ['config.json', 'tok/tokenizer.json'])
    assert.deepEqual(readdirSync(join(cache, 'snapshots', COMMIT)).sort(), ['config.json', 'tok'])
    // One name that matches nothing is a typo, said before anything is fetched.
    const typo = await runCli(['pull', 'hf://acme/tiny', 'model.safetensors', 'confg.json'], env)
    assert.deepEqual([typo.code, typo.stderr.trim()], [2, 'Error: no file of hf://acme/tiny@main matches the path confg.json (did you mean config.json?): list its files with mtune pull hf://acme/tiny@main --dry-run'])
    // A file named without its folder, the usual slip with repos that keep weights in a subfolder.
    const folder = await runCli(['pull', 'hf://acme/tiny/shard.bin'], env)
    assert.match(folder.stderr, /^Error: no file of hf:\/\/acme\/tiny@main matches the path shard\.bin \(did you mean sub\/shard\.bin\?\): /m)
    assert.ok(!existsSync(join(cache, 'snapshots', COMMIT, 'model.safetensors')))
    const refusals: Array<[string[], string]> = [
      [['hf://acme/tiny', '../config.json'], 'Error: invalid path "../config.json": a file or folder of the repo, relative to its root'],
      [['hf://acme/tiny', 'config.json', 'hf://acme/other'], 'Error: one source per pull, and "hf://acme/other" is a second: run mtune pull once for each'],
      [['ollama://tiny', 'ollama://other'], 'Error: one model per pull, and "ollama://other" is a second (an Ollama model is all of its blobs): run mtune pull once for each'],
      [
        ['http://127.0.0.1:9/a.bin', 'http://127.0.0.1:9/b.bin'],
        'Error: one URL per pull, and "http://127.0.0.1:9/b.bin" is a second: other URLs of the same file go in --mirror URL (used at the same time); another file is another mtune pull',
      ],
    ]
    for (const [args, said] of refusals) {
      const r = await runCli(['pull', ...args], env)
      assert.deepEqual([r.code, r.stderr.trim()], [2, said], args.join(' '))
    }
  })

  it('says before a whole GGUF repo is pulled that a runtime loads one variant, and how to take one', async () => {
    const {env} = await hub([
      repo({
        id: 'acme/tiny-GGUF',
        files: [
          {path: 'tiny-Q4_K_M.gguf', content: shard, lfs: true},
          {path: 'tiny-Q8_0.gguf', content: weights, lfs: true},
        ],
      }),
    ])
    const all = await runCli(['pull', 'hf://acme/tiny-GGUF', '--dry-run'], env)
    assert.equal(all.code, 0, all.stderr)
    assert.match(all.stderr, /this repo holds 2 GGUF variants \(15\.0 MiB in all\) and a runtime loads one: hf:\/\/acme\/tiny-GGUF:Q4_K_M \(or --include '\*Q4_K_M\*'\) takes Q4_K_M alone/)
    const one = await runCli(['pull', 'hf://acme/tiny-GGUF', '--include', '*Q4_K_M*', '--dry-run', '--json'], env)
    assert.deepEqual(JSON.parse(one.stdout).notes, [], 'files chosen: nothing to say')
    // ORG/NAME:QUANT, as llama.cpp and Ollama name one variant of a GGUF repo.
    const tagged = JSON.parse((await runCli(['pull', 'hf://acme/tiny-GGUF:q4_k_m', '--dry-run', '--json'], env)).stdout)
    assert.deepEqual([tagged.source, tagged.files.map((f: {name: string}) => f.name), tagged.notes], ['hf://acme/tiny-GGUF:q4_k_m@main', ['tiny-Q4_K_M.gguf'], []])
    const noSuch = await runCli(['pull', 'hf://acme/tiny-GGUF:Q5_K_M'], env)
    assert.equal(noSuch.code, 2)
    assert.match(noSuch.stderr, /^Error: no file of hf:\/\/acme\/tiny-GGUF@main matches the GGUF variant Q5_K_M \(it holds Q4_K_M, Q8_0\): list its files with mtune pull hf:\/\/acme\/tiny-GGUF@main --dry-run$/m)
    // doctor --model checks space for the whole repo: it says so, and how to take one variant.
    const doctor = await runCli(['doctor', 'disk', '--model', 'hf://acme/tiny-GGUF'], env)
    assert.match(doctor.stdout, /hf:\/\/acme\/tiny-GGUF: this repo holds 2 GGUF variants .*: hf:\/\/acme\/tiny-GGUF:Q4_K_M \(or --include '\*Q4_K_M\*'\)/)
    const oneFile = JSON.parse((await runCli(['doctor', 'disk', '--model', 'hf://acme/tiny-GGUF/tiny-Q4_K_M.gguf', '--json'], env)).stdout)
    assert.deepEqual([oneFile.model.size, oneFile.model.advice], [shard.length, []])
    // RAM and VRAM hold one variant, not the repo: the largest is assumed, and said so.
    const memory = JSON.parse((await runCli(['doctor', 'disk', 'memory', '--model', 'hf://acme/tiny-GGUF', '--json'], env)).stdout)
    assert.deepEqual([memory.model.size, memory.model.loads], [shard.length + weights.length, weights.length])
    const ram = memory.findings.find((f: {id: string}) => f.id === 'memory.ram')
    assert.equal(ram.values.model.value, weights.length)
    assert.match(ram.summary, /, model 12\.0 MiB loaded, of 15\.0 MiB pulled$/)
    assert.match(memory.model.advice.at(-1), /^2 GGUF variants here and a runtime loads one: the largest \(Q8_0, 12\.0 MiB\) is assumed for RAM and VRAM; name the one to load, as hf:\/\/acme\/tiny-GGUF:QUANT/)
    const chosen = JSON.parse((await runCli(['doctor', 'memory', '--model', 'hf://acme/tiny-GGUF:Q4_K_M', '--json'], env)).stdout)
    assert.deepEqual([chosen.model.size, chosen.model.loads, chosen.model.advice], [shard.length, shard.length, []])
  })

  it('pulls a dataset into datasets--ORG--NAME', async () => {
    const {env} = await hub([repo({id: 'acme/set', type: 'dataset'})])
    const r = await runCli(['pull', 'hf://datasets/acme/set', '--include', '*.json'], env)
    assert.equal(r.code, 0, r.stderr)
    const snapshot = join(env.HF_HUB_CACHE, 'datasets--acme--set', 'snapshots', COMMIT)
    assert.ok(readFileSync(join(snapshot, 'config.json')).equals(config))
  })

  it('lets doctor --model look up the size and the place the pull would use', async () => {
    const {env, cache} = await hub([repo()])
    const r = await runCli(['doctor', 'disk', 'memory', '--model', 'hf://acme/tiny', '--json'], env)
    assert.ok(r.code === 0 || r.code === 1, r.stderr)
    const doc = JSON.parse(r.stdout)
    assert.equal(doc.model.size, weights.length + shard.length + config.length + tokenizer.length)
    // A runtime loads the safetensors; the config, the tokenizer and the other checkpoint stay on disk.
    assert.equal(doc.model.loads, weights.length)
    assert.equal(doc.path, cache)
    const offline = await runCli(['doctor', 'disk', '--model', 'hf://acme/tiny', '--json'], {...env, HF_ENDPOINT: 'http://127.0.0.1:9'})
    assert.match(JSON.parse(offline.stdout).model.note, /size unknown/)
  })

  it('writes a plain tree with --local-dir', async () => {
    const {env} = await hub([repo()])
    const local = join(dir(), 'tiny')
    const r = await runCli(['pull', 'hf://acme/tiny', '--local-dir', local], env)
    assert.equal(r.code, 0, r.stderr)
    assert.ok(readFileSync(join(local, 'sub', 'shard.bin')).equals(shard))
    assert.ok(statSync(join(local, 'config.json')).isFile())
    // huggingface_hub's bookkeeping (_local_folder.py): commit, etag, a timestamp no earlier
    // than the file, so that `hf download --local-dir` takes the files as current.
    const hfDir = join(local, '.cache', 'huggingface')
    assert.equal(readFileSync(join(hfDir, '.gitignore'), 'utf8'), '*')
    for (const [name, etag] of [['sub/shard.bin', sha256(shard)], ['config.json', gitSha1(config)]]) {
      const [commit, tag, stamp, rest] = readFileSync(join(hfDir, 'download', `${name}.metadata`), 'utf8').split('\n')
      assert.deepEqual([commit, tag, rest], [COMMIT, etag, ''], name)
      assert.ok(statSync(join(local, name)).mtimeMs / 1000 - 1 <= Number(stamp), `${name}: stamped after the file was written`)
    }
    // A file found in place by its size alone is not vouched for.
    rmSync(join(hfDir, 'download', 'config.json.metadata'))
    assert.equal((await runCli(['pull', 'hf://acme/tiny', '--local-dir', local], env)).code, 0)
    assert.ok(!existsSync(join(hfDir, 'download', 'config.json.metadata')))
  })

  it("takes over huggingface_hub's .incomplete files, in the cache and in a local dir; a bad one is caught and fetched again", async () => {
    const {env, cdn, cache} = await hub([repo()])
    const blobs = join(cache, 'blobs')
    mkdirSync(blobs, {recursive: true})
    const half = 5 * MiB
    writeFileSync(join(blobs, `${sha256(weights)}.incomplete`), weights.subarray(0, half))
    const plan = await runCli(['pull', 'hf://acme/tiny', '--dry-run'], env)
    assert.match(plan.stderr, /: 4 files, 15\.0 MiB, 1 partly downloaded \(5\.0 MiB on disk, resumed\) -> /)
    assert.match(plan.stderr, /^ {2}resumes {4}12\.0 MiB {2}model\.safetensors \(5\.0 MiB on disk\)$/m)
    const r = await runCli(['pull', 'hf://acme/tiny', '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    checkSnapshot(cache)
    const taken = JSON.parse(r.stdout).results.find((f: {name: string}) => f.name === 'model.safetensors')
    assert.equal(taken.resumedBytes, half, 'the result says what was kept')
    // The bytes already there were not asked for again: every range of the weights starts after
    // them, but for the resume check's 64 KiB sample of their end (resume-check.ts).
    const asked = cdn.mirror.requests.filter((q) => q.path.includes(sha256(weights))).map((q) => Number(/^bytes=(\d+)-/.exec(q.range ?? '')?.[1] ?? 0))
    assert.ok(asked.length > 0 && Math.min(...asked) >= half - 64 * 1024, `ranges from ${asked.join(', ')}`)
    assert.ok(!existsSync(join(blobs, `${sha256(weights)}.incomplete`)), 'taken over, not copied')
    assert.deepEqual(readdirSync(blobs).filter((n) => !/^[0-9a-f]{40,64}$/.test(n)), [], 'no partial files left')
    // A local dir: .cache/huggingface/download/PATH.ETAG.incomplete; and a start whose end is not
    // the file's (a crash that left garbage) is found by the resume check and fetched again.
    const local = join(dir(), 'tiny')
    const download = join(local, '.cache', 'huggingface', 'download', 'sub')
    mkdirSync(download, {recursive: true})
    const bad = Buffer.from(shard.subarray(0, 2 * MiB))
    bad.fill(0, bad.length - 1000)
    writeFileSync(join(download, `shard.bin.${sha256(shard)}.incomplete`), bad)
    const before = await runCli(['verify', 'hf://acme/tiny', '--local-dir', local], env)
    assert.equal(before.code, 4, before.stdout + before.stderr)
    assert.match(before.stdout, /✗ sub\/shard\.bin: interrupted \(another client's download of it was cut: mtune pull takes it over\)/)
    const l = await runCli(['pull', 'hf://acme/tiny', '--local-dir', local], env)
    assert.equal(l.code, 0, l.stderr)
    assert.match(l.stderr, /taking over the partial download another client left: 2\.0 MiB in .*shard\.bin\.[0-9a-f]{64}\.incomplete/)
    assert.match(l.stderr, /the bytes taken over from .*shard\.bin\.[0-9a-f]{64}\.incomplete are not the server's \(at \d+\): starting over/, 'said as what it is, not as a file changed on the server')
    assert.ok(readFileSync(join(local, 'sub', 'shard.bin')).equals(shard), 'the bad bytes were replaced')
  })

  it("takes over aria2c's partial downloads in a --local-dir tree (hfd.sh's), which are not files found by size", async () => {
    const {env, cdn} = await hub([repo()])
    const local = join(dir(), 'tiny')
    mkdirSync(join(local, 'sub'), {recursive: true})
    // As aria2c leaves it: the full size at once, two of three 1 MiB pieces finished.
    const path = join(local, 'sub', 'shard.bin')
    const left = Buffer.alloc(shard.length)
    shard.copy(left, 0, 0, MiB)
    shard.copy(left, 2 * MiB, 2 * MiB)
    writeFileSync(path, left)
    writeFileSync(`${path}.aria2`, aria2Control(shard.length, MiB, [0, 2]))
    const before = await runCli(['verify', 'hf://acme/tiny', '--local-dir', local], env)
    assert.match(before.stdout, /✗ sub\/shard\.bin: interrupted \(aria2c's download of it was cut: mtune pull takes it over\)/)
    const r = await runCli(['pull', 'hf://acme/tiny', '--local-dir', local], env)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /taking over the partial download another client left: 2\.0 MiB in 2 pieces in .*sub\/shard\.bin\n/)
    assert.ok(readFileSync(path).equals(shard), 'the pieces it had not finished were fetched, not taken as there')
    assert.ok(!existsSync(`${path}.aria2`))
    const asked = cdn.mirror.requests.filter((q) => q.path.includes(sha256(shard))).map((q) => /^bytes=(\d+)-(\d+)$/.exec(q.range ?? 'whole file')!.slice(1).map(Number))
    // Only the middle piece, and the resume check's 64 KiB sample of the end of a piece kept.
    const sample = (start: number, last: number) => last - start < 64 * 1024 && [MiB, 3 * MiB].includes(last + 1)
    for (const [start, last] of asked) assert.ok((start >= MiB && last < 2 * MiB) || sample(start, last), `asked for ${start}-${last}`)
    // verify --repair keeps it for the pull to take over, rather than deleting it as corrupt.
    writeFileSync(path, left)
    writeFileSync(`${path}.aria2`, aria2Control(shard.length, MiB, [0, 2]))
    const repaired = await runCli(['verify', 'hf://acme/tiny', '--local-dir', local, '--repair'], env)
    assert.equal(repaired.code, 0, repaired.stdout + repaired.stderr)
    assert.match(repaired.stderr, /taking over the partial download another client left: 2\.0 MiB in 2 pieces/)
    assert.ok(readFileSync(path).equals(shard) && !existsSync(`${path}.aria2`))
  })

  it('--dry-run prints the plan and writes nothing', async () => {
    const {env, cache} = await hub([repo()])
    const r = await runCli(['pull', 'hf://acme/tiny', '--dry-run'], env)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /hf:\/\/acme\/tiny@main \(commit 0123456789ab\): 4 files, 15\.0 MiB/)
    assert.match(r.stderr, /to pull .*model\.safetensors/)
    assert.ok(!existsSync(cache))
  })

  it('says what is wrong: gated, missing, bad token, missing revision', async () => {
    const {env} = await hub([repo({gated: true}), repo({id: 'acme/open'})], {token: 'good'})
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['pull', 'hf://acme/tiny'], {HF_TOKEN: ''}, /is gated: request access on the model's page and give a token \(HF_TOKEN\)/],
      [['pull', 'hf://acme/none'], {HF_TOKEN: ''}, /not found, or private: check the name, or give a token/],
      [['pull', 'hf://acme/open'], {HF_TOKEN: 'wrong-token'}, /the token was refused .*check HF_TOKEN/],
      [['pull', 'hf://acme/open@nope'], {}, /revision not found/],
      // An HF_ENDPOINT left exported for a rack cache that has stopped: named, with what to do.
      [['pull', 'hf://acme/open'], {HF_ENDPOINT: 'http://127.0.0.1:9'}, /^Error: cannot reach http:\/\/127\.0\.0\.1:9\/api\/models\/acme\/open\/revision\/main\?…: connection refused \(127\.0\.0\.1:9\), the endpoint from HF_ENDPOINT: check it \(a rack cache: mtune cache status on its host\), or unset it for huggingface\.co$/m],
      // One given in the command is not pointed at again.
      [['pull', 'hf://acme/open', '--endpoint', 'http://127.0.0.1:9'], {}, /: connection refused \(127\.0\.0\.1:9\)$/m],
    ]
    for (const [args, extra, message] of cases) {
      const r = await runCli(args, {...env, ...extra})
      assert.equal(r.code, 3, r.stderr)
      assert.match(r.stderr, message)
      assert.doesNotMatch(r.stderr, /wrong-token/, 'the token is never printed')
    }
  })

  it('waits out a rate limit and says so', async () => {
    const {env} = await hub([repo()], {rateLimitFirst: 1})
    const r = await runCli(['pull', 'hf://acme/tiny', '--include', 'config.json'], env)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /rate limited by 127\.0\.0\.1:\d+: waiting 1\.0s as it asked/)
  })

  for (const hideExpiry of [false, true]) {
    it(`renews a signed CDN URL that expires mid-file (${hideExpiry ? 'refused with 403' : 'before its stated expiry'})`, async () => {
      // 1 MiB requests at 1 MiB/s per connection: requests keep starting for ~6 s, well after
      // the link expires (1.5 to 2.5 s), so the renewal is certain to be needed.
      const {env, cache, cdn} = await hub([repo()], {ttlMs: 1500, rate: 1 * MiB, hideExpiry})
      const r = await runCli(['pull', 'hf://acme/tiny', '--include', 'model.safetensors', '-c', '2', '--max-connections', '2', '--chunk-size', '1M'], env)
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stderr, hideExpiry ? /was refused \(403\): resolved it again/ : /is about to expire: resolved it again/)
      assert.ok(readFileSync(join(cache, 'snapshots', COMMIT, 'model.safetensors')).equals(weights))
      assert.ok(cdn.mirror.bytesSent <= weights.length * 1.1, 'only missing ranges were fetched after renewal')
    })
  }

  it('refuses a hostile listing and writes nothing outside the cache', async () => {
    const base = dir()
    for (const name of ['../../escape.txt', '/etc/evil', 'a\\b.txt']) {
      const {env} = await hub([repo({extraNames: [name]})])
      const r = await runCli(['pull', 'hf://acme/tiny'], {...env, HF_HOME: join(base, 'home'), HF_HUB_CACHE: join(base, 'home', 'hub')})
      assert.equal(r.code, 3, r.stderr)
      assert.match(r.stderr, /refusing the file name/)
    }
    assert.ok(!existsSync(join(base, 'escape.txt')) && !existsSync(join(base, 'home', 'escape.txt')))
  })

  it("lists a repo of more files than the Hub's siblings list holds from its tree, page by page, on the endpoint given", async () => {
    const many = Array.from({length: 1204}, (_, i) => ({path: `data/part-${String(i).padStart(4, '0')}.json`, content: Buffer.from(`{"row": ${i}}`), lfs: false}))
    const files = [...many, {path: 'model.safetensors', content: shard, lfs: true}]
    const cdn = await startCdn()
    // The Hub truncates siblings for large repos; its tree's Link headers name huggingface.co
    // itself, which a mirror passes through: the pages are asked of the endpoint (no network here).
    const hf = await startFakeHf([repo({id: 'acme/many', type: 'dataset', files, siblingsCap: 1001})], {cdn, treePage: 500, treeLinkOrigin: 'https://huggingface.co'})
    closers.push(() => cdn.close(), () => hf.close())
    const home = dir()
    const env = {HF_ENDPOINT: hf.origin, HF_HOME: home, HF_HUB_CACHE: join(home, 'hub'), HF_TOKEN: ''}
    const plan = await runCli(['pull', 'hf://datasets/acme/many', '--dry-run', '--json'], env)
    assert.equal(plan.code, 0, plan.stderr)
    assert.equal(JSON.parse(plan.stdout).files.length, 1205)
    const trees = hf.requests.map((r) => r.path).filter((p) => p.includes('/tree/'))
    assert.deepEqual(trees.length, 3, 'three pages of 500 entries, folders among them')
    assert.ok(trees.every((r) => r.includes(`/api/datasets/acme/many/tree/${COMMIT}?recursive=true`)), 'at the commit the revision named')
    // The last files, beyond what siblings listed, pulled and in the snapshot.
    const last = await runCli(['pull', 'hf://datasets/acme/many', '--include', 'data/part-120*', '--include', '*.safetensors', '--json'], env)
    assert.equal(last.code, 0, last.stderr)
    const snapshot = join(home, 'hub', 'datasets--acme--many', 'snapshots', COMMIT)
    assert.equal(readFileSync(join(snapshot, 'data', 'part-1203.json'), 'utf8'), '{"row": 1203}')
    assert.ok(readFileSync(join(snapshot, 'model.safetensors')).equals(shard))
    // A repo whose revision lists no siblings at all: its tree too.
    const none = await startFakeHf([repo({siblingsCap: 0})], {cdn})
    closers.push(() => none.close())
    const small = await runCli(['pull', 'hf://acme/tiny', '--dry-run', '--json'], {...env, HF_ENDPOINT: none.origin})
    assert.deepEqual(JSON.parse(small.stdout).files.map((f: {name: string}) => f.name).sort(), ['config.json', 'model.safetensors', 'sub/shard.bin', 'tok/tokenizer.json'])
    // A listing the Hub refuses is said as its other answers are, not taken as an empty repo.
    const refused = await startFakeHf([repo({siblingsCap: 0})], {cdn, treeRefused: true})
    closers.push(() => refused.close())
    const gone = await runCli(['pull', 'hf://acme/tiny', '--dry-run'], {...env, HF_ENDPOINT: refused.origin})
    assert.deepEqual([gone.code, gone.stderr.trim()], [3, 'Error: revision not found: hf://acme/tiny@main; check the branch, tag or commit after @'])
  })

  it('resumes an interrupted multi-file pull file by file and within files', async () => {
    const {env, cache, cdn} = await hub([repo()], {rate: 4 * MiB})
    const first = startCli(['pull', 'hf://acme/tiny', '-c', '2', '--max-connections', '4'], env)
    const deadline = Date.now() + 30_000
    while (cdn.mirror.bytesSent < 6 * MiB && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    first.child.kill('SIGKILL')
    await first.done
    const before = cdn.mirror.bytesSent
    const again = await runCli(['pull', 'hf://acme/tiny', '--json'], env)
    assert.equal(again.code, 0, again.stderr)
    checkSnapshot(cache)
    // What the first pull had on disk is kept: whole files, and the written ranges of the others.
    // Counted from the second pull's own report, not from the bytes the CDN sent before the
    // kill: those include what was still in socket buffers, which a loaded machine makes larger.
    const {results} = JSON.parse(again.stdout) as {results: Array<{size: number; skipped: boolean; resumedBytes?: number}>}
    const kept = results.reduce((sum, f) => sum + (f.skipped ? f.size : (f.resumedBytes ?? 0)), 0)
    const resumed = results.filter((f) => !f.skipped && (f.resumedBytes ?? 0) > 0).length
    assert.ok(resumed > 0, `no file was resumed within: ${JSON.stringify(results)}`)
    const fetched = cdn.mirror.bytesSent - before
    // Beyond what it lacked: the 64 KiB it fetches again of each file it resumes, to compare with
    // what it kept (resume-check.ts), and 5% for pieces a slow connection shares with another.
    const total = weights.length + shard.length
    assert.ok(fetched <= (total - kept) * 1.05 + resumed * 64 * 1024, `fetched ${fetched} again with ${kept} of ${total} kept`)
  })
})

describe('mtune pull ollama://', () => {
  it('writes blobs and then the manifest bytes exactly as received', async () => {
    const cdn: FakeCdn = await startCdn()
    const cfg = Buffer.from('{"model_format":"gguf"}')
    const model = makeContent(6 * MiB, 31)
    const params = Buffer.from('{"temperature":0.7}')
    const reg = await startFakeOllama([{namespace: 'library', model: 'tiny', tag: 'q4', blobs: [cfg, model, params]}], cdn)
    closers.push(() => cdn.close(), () => reg.close())
    const models = dir()
    const host = new URL(reg.origin).host
    const r = await runCli(['pull', `ollama://${host}/library/tiny:q4`, '--insecure', '--json'], {OLLAMA_MODELS: models})
    assert.equal(r.code, 0, r.stderr)
    for (const b of [cfg, model, params]) {
      const blob = join(models, 'blobs', `sha256-${sha256(b)}`)
      assert.ok(readFileSync(blob).equals(b))
      assert.equal(statSync(blob).mode & 0o777, 0o644)
    }
    const manifest = readFileSync(join(models, 'manifests', host, 'library', 'tiny', 'q4'))
    const served = await (await fetch(`${reg.origin}/v2/library/tiny/manifests/q4`)).arrayBuffer()
    assert.ok(manifest.equals(Buffer.from(served)), 'manifest bytes as received')
    assert.deepEqual(readdirSync(join(models, 'blobs')).sort(), [cfg, model, params].map((b) => `sha256-${sha256(b)}`).sort(), 'no partial files in blobs/')
    assert.deepEqual(readdirSync(models).sort(), ['blobs', 'manifests'], "the store as Ollama lays it out: mtune's partial folder gone once empty")
    assert.equal(cdn.authSeen, 0)
    // Pulled again, complete: nothing is written (the system service's store may not be writable).
    const manifestPath = join(models, 'manifests', host, 'library', 'tiny', 'q4')
    const stamp = lstatSync(manifestPath, {bigint: true})
    assert.equal((await runCli(['pull', `ollama://${host}/library/tiny:q4`, '--insecure'], {OLLAMA_MODELS: models})).code, 0)
    assert.deepEqual([lstatSync(manifestPath, {bigint: true}).ino, lstatSync(manifestPath, {bigint: true}).mtimeNs], [stamp.ino, stamp.mtimeNs])

    // The other commands that take a source reach a plain-http registry the same way.
    const size = await runCli(['doctor', 'disk', '--model', `ollama://${host}/library/tiny:q4`, '--insecure', '--json'], {OLLAMA_MODELS: models})
    assert.equal(size.code, 0, size.stderr)
    assert.equal(JSON.parse(size.stdout).size, cfg.length + model.length + params.length)
    const bench = await runCli(['bench', '--mirror', `ollama://${host}/library/tiny:q4`, '--insecure', '--connections', '1', '--chunk-size', '1M', '--duration', '3', '--json'], {XDG_CACHE_HOME: dir()})
    assert.equal(bench.code, 0, bench.stderr)
    assert.equal(JSON.parse(bench.stdout).mirrors[0].ok, true)
  })

  it("run as root into a store another user owns (the Ollama service's), gives what it made there to that user", async () => {
    const cdn: FakeCdn = await startCdn()
    const blobs = [Buffer.from('{"model_format":"gguf"}'), makeContent(2 * MiB, 33)]
    const reg = await startFakeOllama([{namespace: 'library', model: 'tiny', tag: 'q4', blobs}], cdn)
    closers.push(() => cdn.close(), () => reg.close())
    const host = new URL(reg.origin).host
    const root = process.getuid?.() === 0
    // As the Ollama service's store: its models folder belongs to user ollama (here: nobody, 65534).
    const models = join(dir(), 'models')
    mkdirSync(models)
    if (root) chownSync(models, 65534, 65534)
    const r = await runCli(['pull', `ollama://${host}/library/tiny:q4`, '--insecure'], {OLLAMA_MODELS: models})
    assert.equal(r.code, 0, r.stderr)
    const made = [
      join(models, 'blobs'),
      ...blobs.map((b) => join(models, 'blobs', `sha256-${sha256(b)}`)),
      join(models, 'manifests'),
      join(models, 'manifests', host, 'library', 'tiny'),
      join(models, 'manifests', host, 'library', 'tiny', 'q4'),
    ]
    const want = root ? 65534 : process.getuid?.()
    for (const path of made) assert.equal(lstatSync(path).uid, want, path)
    if (root) assert.match(r.stderr, /written as root where (nobody \()?uid 65534\)? owns .*models: what this pull made there is that user's/)
    else assert.doesNotMatch(r.stderr, /written as root/)
  })

  it("takes over the partial download `ollama pull` left: only its holes are fetched, its records go", async () => {
    const cdn: FakeCdn = await startCdn()
    const cfg = Buffer.from('{"model_format":"gguf"}')
    const model = makeContent(6 * MiB, 32)
    const reg = await startFakeOllama([{namespace: 'library', model: 'cut', tag: 'latest', blobs: [cfg, model]}], cdn)
    closers.push(() => cdn.close(), () => reg.close())
    const models = dir()
    const host = new URL(reg.origin).host
    const blob = join(models, 'blobs', `sha256-${sha256(model)}`)
    mkdirSync(join(models, 'blobs'))
    // Three parts of 2 MiB, cut at 1 MiB, done, and at 0.5 MiB: [0, 1M) and [2M, 4.5M) are there.
    await plantOllamaPartial(blob, model, partsOf(model.length, 2 * MiB, [1 * MiB, 2 * MiB, MiB / 2]))
    const r = await runCli(['pull', `ollama://${host}/library/cut`, '--insecure'], {OLLAMA_MODELS: models})
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /taking over the partial download another client left: 3\.5 MiB in 2 pieces in .*sha256-[0-9a-f]{64}-partial/)
    assert.ok(readFileSync(blob).equals(model))
    assert.deepEqual(readdirSync(join(models, 'blobs')).sort(), [cfg, model].map((b) => `sha256-${sha256(b)}`).sort(), "Ollama's partial file and its records are gone")
    // Nothing it held was asked for again, but for the resume check's 64 KiB sample of the end
    // of the largest piece (resume-check.ts).
    const held = [{start: 0, end: MiB}, {start: 2 * MiB, end: 4.5 * MiB - 64 * 1024}]
    const asked = cdn.mirror.requests.filter((q) => q.path.includes(sha256(model))).map((q) => /^bytes=(\d+)-(\d+)$/.exec(q.range ?? 'whole file')!.slice(1).map(Number))
    assert.ok(asked.length > 0)
    for (const [start, last] of asked) assert.ok(held.every((h) => last < h.start || start >= h.end), `asked for ${start}-${last}, which was there`)
  })

  it('refuses a digest that is not sha256:<64 hex>, before writing anything', async () => {
    const cdn = await startCdn()
    const bad = JSON.stringify({schemaVersion: 2, config: {digest: 'sha256:../../etc', size: 1}, layers: []})
    const reg = await startFakeOllama([{namespace: 'library', model: 'bad', tag: 'latest', blobs: [Buffer.from('x')], manifest: bad}], cdn)
    closers.push(() => cdn.close(), () => reg.close())
    const models = dir()
    const r = await runCli(['pull', `ollama://${new URL(reg.origin).host}/library/bad`, '--insecure'], {OLLAMA_MODELS: models})
    assert.equal(r.code, 3)
    assert.match(r.stderr, /refusing the digest "sha256:\.\.\/\.\.\/etc"/)
    assert.ok(!existsSync(join(models, 'manifests')))
  })
})

describe('mtune pull modelscope://', () => {
  it('pulls into the ModelScope cache layout, verified by sha256', async () => {
    const cdn = await startCdn()
    const files = [
      {path: 'model.safetensors', content: makeContent(5 * MiB, 41)},
      {path: 'sub/config.json', content: Buffer.from('{}')},
    ]
    const ms = await startFakeModelscope([{id: 'owner/tiny', revision: 'master', files}], cdn)
    closers.push(() => cdn.close(), () => ms.close())
    const cacheDir = dir()
    const r = await runCli(['pull', 'modelscope://owner/tiny'], {MODELSCOPE_ENDPOINT: ms.origin, MODELSCOPE_CACHE: cacheDir})
    assert.equal(r.code, 0, r.stderr)
    for (const f of files) assert.ok(readFileSync(join(cacheDir, 'models', 'owner--tiny', 'snapshots', 'master', f.path)).equals(f.content))
    const missing = await runCli(['pull', 'modelscope://owner/none'], {MODELSCOPE_ENDPOINT: ms.origin, MODELSCOPE_CACHE: cacheDir})
    assert.equal(missing.code, 3)
    assert.match(missing.stderr, /not found/)
  })
})
