import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {chownSync, existsSync, lstatSync, mkdirSync, readFileSync, rmSync, symlinkSync, truncateSync, unlinkSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {createServer} from 'node:http'
import type {AddressInfo} from 'node:net'
import {once} from 'node:events'
import {after, describe, it} from 'node:test'
import {downloadFileToCacheDir} from '@huggingface/hub'
import {judge} from '../src/lib/verify/judge.js'
import {parseChecksumList} from '../src/lib/verify/checksum-list.js'
import {decodeText} from '../src/lib/text-file.js'
import {hashFiles} from '../src/lib/verify/hash-pool.js'
import {runCli} from './support/cli.js'
import {gitSha1, startCdn, startFakeHf, startFakeModelscope, startFakeOllama, type HubRepo} from './support/fake-hubs.js'
import {makeContent, startMirror} from './support/mirror-server.js'
import {partsOf, plantOllamaPartial} from './support/ollama-partial.js'
import {tempDir} from './support/temp.js'
import {ggufFile, safetensorsFile, torchZip} from './support/weight-files.js'
import {headerSize} from '../src/lib/verify/weight-headers.js'
import {PullLock} from '../src/lib/transfer/pull-lock.js'
import {bareUrl, unchangedSince} from '../src/lib/transfer/previous-pull.js'
import {pulledFile, pulledRecordsIn, recordPulled} from '../src/lib/verify/pull-record.js'

const MiB = 1024 * 1024
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const closers: Array<() => Promise<unknown>> = []
after(async () => {
  for (const c of closers) await c().catch(() => {})
})
const dir = (what = 'verify') => tempDir(what)
const COMMIT = 'abcdef0123456789abcdef0123456789abcdef01'
const weights = makeContent(12 * MiB, 31)
const shard = makeContent(3 * MiB, 32)
const config = Buffer.from('{"model_type": "verified"}\n')

const repo = (): HubRepo => ({
  id: 'acme/checked',
  commit: COMMIT,
  files: [
    {path: 'model.safetensors', content: weights, lfs: true},
    {path: 'sub/shard.bin', content: shard, lfs: true},
    {path: 'config.json', content: config, lfs: false},
  ],
})

async function pulledHub() {
  const cdn = await startCdn()
  const hub = await startFakeHf([repo()], {cdn})
  closers.push(() => hub.close(), () => cdn.close())
  const home = dir('hf')
  const env = {HF_ENDPOINT: hub.origin, HF_HOME: home, HF_HUB_CACHE: join(home, 'hub'), HF_TOKEN: ''}
  const r = await runCli(['pull', 'hf://acme/checked'], env)
  assert.equal(r.code, 0, r.stderr)
  const repoDir = join(home, 'hub', 'models--acme--checked')
  return {cdn, hub, env, repoDir, blob: (b: Buffer) => join(repoDir, 'blobs', sha256(b)), link: (name: string) => join(repoDir, 'snapshots', COMMIT, name)}
}

/** `shard` pulled from a URL with the CLI, in a home of its own (where its record goes). */
async function pulledFromUrl() {
  const m = await startMirror({content: shard})
  closers.push(() => m.close())
  const d = dir()
  const file = join(d, 'model.bin')
  const xdg = {XDG_CACHE_HOME: dir('xdg')}
  assert.equal((await runCli(['pull', m.url, '-o', file], xdg)).code, 0)
  return {m, d, file, xdg}
}

const flipByte = (path: string, at: number) => {
  const b = readFileSync(path)
  b[at] ^= 0xff
  writeFileSync(path, b)
}

describe('verify: judging one file', () => {
  it('calls a short file truncated, a different one corrupt, a present one with a good digest ok', () => {
    const e = {name: 'm', path: '/m', size: 10, sha256: 'a'.repeat(64)}
    assert.equal(judge(e, {}).status, 'missing')
    assert.equal(judge(e, {size: 4}).status, 'truncated')
    assert.equal(judge(e, {size: 12}).status, 'corrupt')
    assert.equal(judge(e, {size: 10}, {digest: 'b'.repeat(64)}).status, 'corrupt')
    assert.equal(judge(e, {size: 10}, {digest: 'a'.repeat(64)}).status, 'ok')
    const linkGone = judge({...e, link: '/snap/m'}, {size: 10, linkTarget: null}, {digest: 'a'.repeat(64)})
    assert.deepEqual([linkGone.status, linkGone.linkOnly], ['missing', true], 'a good blob whose link is gone: only the link to write')
    assert.equal(judge({name: 'x', path: '/x', size: 3}, {size: 3}).status, 'ok', 'size only, said so in detail')
  })

  it('hashes files on all cores as sha256 and as git blob sha1', async () => {
    const d = dir()
    const a = join(d, 'a')
    const b = join(d, 'b')
    writeFileSync(a, weights)
    writeFileSync(b, config)
    let seen = 0
    const [ha, hb, hc] = await hashFiles(
      [
        {path: a, algorithm: 'sha256'},
        {path: b, algorithm: 'git-sha1'},
        {path: join(d, 'none'), algorithm: 'sha256'},
      ],
      {onBytes: (n) => (seen += n)},
    )
    assert.equal(ha.digest, sha256(weights))
    assert.equal(hb.digest, gitSha1(config))
    assert.equal(hc.error, 'ENOENT')
    assert.equal(seen, weights.length + config.length)
  })
})

describe('a re-run of a pull: is the server\'s file the one pulled before?', () => {
  const before = {url: 'https://h/f', size: 10, sha256: 'a'.repeat(64), at: '2026-12-01T00:00:00Z'}
  it('goes by size and ETag, else Last-Modified, and takes no guess where the validators came and went', () => {
    assert.equal(unchangedSince({...before, etag: '"x"'}, {size: 10, etag: '"x"'}), true)
    assert.equal(unchangedSince({...before, etag: '"x"'}, {size: 10, etag: '"y"'}), false)
    assert.equal(unchangedSince({...before, etag: '"x"'}, {size: 11, etag: '"x"'}), false)
    assert.equal(unchangedSince({...before, lastModified: 'Mon'}, {size: 10, lastModified: 'Mon'}), true)
    assert.equal(unchangedSince({...before, lastModified: 'Mon'}, {size: 10, lastModified: 'Tue'}), false)
    assert.equal(unchangedSince(before, {size: 10}), true, 'a server with neither, then and now: its size')
    assert.equal(unchangedSince(before, {size: 10, etag: '"x"'}), false)
    assert.equal(unchangedSince({...before, etag: '"x"'}, {size: 10}), false)
    assert.equal(bareUrl('https://u:p@h/f?X-Amz-Signature=s#frag'), 'https://h/f')
  })

  it("finds a list's files in the record read once, the last line for a file winning, also through links", () => {
    const env = {XDG_CACHE_HOME: dir('xdg')}
    const d = dir()
    const away = dir()
    mkdirSync(join(d, 'sub'))
    symlinkSync(away, join(d, 'out'))
    symlinkSync(join(d, 'sub'), join(d, 'in'))
    for (const f of [join(d, 'a'), join(d, 'sub', 'b'), join(away, 'c')]) writeFileSync(f, 'x')
    const line = (path: string, digit: string) => pulledFile(path, 1, digit.repeat(64), `https://h/${digit}`, false)
    recordPulled([line(join(d, 'a'), 'a'), line(join(d, 'sub', 'b'), 'b'), line(join(away, 'c'), 'c'), line(join(d, 'a'), 'd')], env)
    const recordOf = pulledRecordsIn(d, env)
    assert.equal(recordOf(join(d, 'a'))?.sha256, 'd'.repeat(64))
    assert.equal(recordOf(join(d, 'in', 'b'))?.sha256, 'b'.repeat(64))
    assert.equal(recordOf(join(d, 'out', 'c'))?.sha256, 'c'.repeat(64), 'a link that leads out of the list\'s directory')
    assert.equal(recordOf(join(d, 'none')), undefined)
  })
})

describe('mtune verify hf://', () => {
  it('an intact pull is intact, online and offline, with a stable --json document', async () => {
    const {env, hub, repoDir} = await pulledHub()
    // Its folder in the cache, as `cd` there and `mtune verify .` give it: the same check, said so.
    const viaFolder = await runCli(['verify', '.'], env, {cwd: join(repoDir, 'snapshots', COMMIT)})
    assert.equal(viaFolder.code, 0, viaFolder.stderr)
    assert.match(viaFolder.stdout, new RegExp(`^• \\. is the Hugging Face cache's copy of acme/checked: checked as mtune verify hf://acme/checked --revision ${COMMIT}\n✓ intact: 3 of 3 files match the hub's digests`))
    const r = await runCli(['verify', 'hf://acme/checked', '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    const doc = JSON.parse(r.stdout)
    assert.deepEqual(Object.keys(doc).sort(), ['against', 'files', 'intact', 'kind', 'notPulled', 'notes', 'problems', 'root', 'summary', 'target'])
    assert.deepEqual(doc.notPulled, [])
    assert.equal(doc.intact, true)
    assert.equal(doc.against, 'hub')
    assert.equal(doc.summary.ok, 3)
    assert.equal(doc.summary.bytesHashed, weights.length + shard.length + config.length)
    const offline = await runCli(['verify', 'hf://acme/checked', '--offline'], env)
    assert.equal(offline.code, 0, offline.stderr)
    assert.match(offline.stdout, /intact: 3 of 3 files match the digests in the blob names/)
    // An air-gapped cluster's HF_HUB_OFFLINE, as huggingface_hub reads it: the hub is not asked.
    const asked = hub.requests.length
    const airGapped = JSON.parse((await runCli(['verify', 'hf://acme/checked', '--json'], {...env, HF_HUB_OFFLINE: 'YES'})).stdout)
    assert.equal(airGapped.against, 'disk')
    assert.equal(airGapped.intact, true)
    assert.match(airGapped.notes.join('\n'), /HF_HUB_OFFLINE is set: checked against the disk alone/)
    assert.equal(hub.requests.length, asked)
    // A hub that takes its time and then fails: the check goes by the disk, and "hashed in" is
    // the hashing, not the wait (it once read "36 MiB hashed in 3.0 s, 12 MiB/s").
    const slow = createServer((req, res) => void setTimeout(() => res.writeHead(404).end(), 1_500)).listen(0, '127.0.0.1')
    after(() => slow.close())
    await once(slow, 'listening')
    const began = performance.now()
    const late = JSON.parse((await runCli(['verify', 'hf://acme/checked', '--json'], {...env, HF_ENDPOINT: `http://127.0.0.1:${(slow.address() as AddressInfo).port}`})).stdout)
    assert.ok(performance.now() - began >= 1_500)
    assert.equal(late.against, 'disk')
    assert.ok(late.summary.seconds < 1, `hashing ${late.summary.bytesHashed} bytes took ${late.summary.seconds} s`)
  })

  it('names each problem, exits 4, and --repair pulls exactly the bad files again', async () => {
    const {env, cdn, blob, link, repoDir} = await pulledHub()
    flipByte(blob(weights), 5 * MiB)
    truncateSync(blob(shard), 1000)
    unlinkSync(link('config.json'))
    writeFileSync(join(repoDir, 'blobs', `${'e'.repeat(64)}.incomplete`), 'partial')
    const r = await runCli(['verify', 'hf://acme/checked'], env)
    assert.equal(r.code, 4, r.stderr)
    assert.match(r.stdout, /✗ model\.safetensors: corrupt \(sha256 [0-9a-f]{64} instead of [0-9a-f]{64}\)/)
    assert.match(r.stdout, /✗ sub\/shard\.bin: truncated \(1000 of 3145728 bytes\)/)
    assert.match(r.stdout, /✗ config\.json: missing \(the snapshot link config\.json is missing\)/)
    assert.match(r.stdout, /✗ blobs\/e{64}\.incomplete: left over/)
    assert.match(r.stdout, /not intact: 1 corrupt, 1 truncated, 1 missing, 1 left over/)
    assert.match(r.stdout, /fix: mtune verify hf:\/\/acme\/checked --repair/)

    const before = cdn.mirror.bytesSent
    const firstRequest = cdn.mirror.requests.length
    const fixed = await runCli(['verify', 'hf://acme/checked', '--repair', '--json'], env)
    assert.equal(fixed.code, 0, fixed.stderr)
    const doc = JSON.parse(fixed.stdout)
    assert.equal(doc.intact, true)
    assert.deepEqual(doc.repair.files.sort(), ['model.safetensors', 'sub/shard.bin'])
    assert.deepEqual(doc.repair.links, ['config.json'], 'a good blob whose link was gone: linked, not fetched')
    // The report is the check after the repair; what it found before stays in repair.found.
    assert.deepEqual(doc.repair.found.map((f: {name: string; status: string}) => `${f.name} ${f.status}`).sort(), [`blobs/${'e'.repeat(64)}.incomplete incomplete`, 'config.json missing', 'model.safetensors corrupt', 'sub/shard.bin truncated'])
    const fetched = new Set(cdn.mirror.requests.slice(firstRequest).map((q) => q.path))
    assert.deepEqual([...fetched].sort(), [`/file/${sha256(weights)}`, `/file/${sha256(shard)}`].sort(), 'nothing else was fetched')
    // The engine may fetch a little twice (a slow connection's range handed to another): not a whole file.
    assert.ok(cdn.mirror.bytesSent - before < 1.25 * (weights.length + shard.length))
    assert.ok(readFileSync(link('config.json')).equals(config), 'the link is back')
    assert.ok(!existsSync(join(repoDir, 'blobs', `${'e'.repeat(64)}.incomplete`)))

    unlinkSync(link('config.json'))
    const relinked = await runCli(['verify', 'hf://acme/checked', '--repair'], env)
    assert.equal(relinked.code, 0, relinked.stderr)
    assert.match(relinked.stdout, /✓ repaired: linked 1 file again \(the blob was good\): config\.json\n/, 'the line names what it did')
  })

  it('a file of the cache by its path, against its blob\'s name; files of the repo named after the source', async () => {
    const {env, blob, link, hub} = await pulledHub()
    const ok = await runCli(['verify', link('config.json'), link('model.safetensors')], env)
    assert.equal(ok.code, 0, ok.stdout + ok.stderr)
    assert.match(ok.stdout, /intact: 2 of 2 files match the digests in the blob names/, 'a git blob sha1 and a sha256, from the names')
    flipByte(blob(weights), 11)
    const asked = hub.requests.length
    const bad = await runCli(['verify', link('model.safetensors')], env)
    assert.equal(bad.code, 4)
    assert.match(bad.stdout, new RegExp(`a blob of hf://acme/checked in the Hugging Face cache, checked against its name; mtune verify hf://acme/checked --revision ${COMMIT} checks the whole snapshot`))
    assert.match(bad.stdout, new RegExp(`fix: mtune verify hf://acme/checked --revision ${COMMIT} --repair$`, 'm'))
    assert.equal(hub.requests.length, asked, 'a file by its path needs no hub')
    // hf download's way: the files after the source; one named wrongly is said, not skipped.
    const named = await runCli(['verify', 'hf://acme/checked', 'config.json', 'sub', '--json'], env)
    assert.equal(named.code, 0, named.stderr)
    assert.deepEqual(JSON.parse(named.stdout).files.map((f: {name: string}) => f.name).sort(), ['config.json', 'sub/shard.bin'])
    const both = await runCli(['verify', 'hf://acme/checked', 'config.json', 'model.safetensors'], env)
    assert.equal(both.code, 4)
    assert.match(both.stdout, /fix: mtune verify hf:\/\/acme\/checked config\.json model\.safetensors --repair/, 'the fix keeps the files')
    const typo = await runCli(['verify', 'hf://acme/checked', 'config.json', 'confg.json'], env)
    assert.deepEqual([typo.code, typo.stderr.trim()], [2, `Error: no file of hf://acme/checked@${COMMIT} matches the path confg.json (did you mean config.json?): list its files with mtune pull hf://acme/checked@${COMMIT} --dry-run`])
  })

  it('a --local-dir tree checked offline, by the path alone, against huggingface_hub\'s record in it', async () => {
    const {env, hub} = await pulledHub()
    const tree = dir('tree')
    assert.equal((await runCli(['pull', 'hf://acme/checked', '--local-dir', tree], env)).code, 0)
    const asked = hub.requests.length
    const ok = await runCli(['verify', tree, '--json'], {...env, HF_ENDPOINT: 'http://127.0.0.1:9'})
    assert.equal(ok.code, 0, ok.stderr)
    const doc = JSON.parse(ok.stdout)
    assert.equal(doc.against, 'record')
    assert.deepEqual(doc.files.map((f: {name: string; status: string}) => `${f.name} ${f.status}`).sort(), ['config.json ok', 'model.safetensors ok', 'sub/shard.bin ok'])
    assert.match(doc.notes[0], new RegExp(`checked offline against huggingface_hub's record of what it fetched into ${tree} \\(commit ${COMMIT.slice(0, 12)}\\)`))
    assert.equal(hub.requests.length, asked, 'no hub asked')
    flipByte(join(tree, 'model.safetensors'), 9)
    unlinkSync(join(tree, 'config.json'))
    const bad = await runCli(['verify', tree], env)
    assert.equal(bad.code, 4)
    assert.match(bad.stdout, /✗ model\.safetensors: corrupt \(sha256 /)
    assert.match(bad.stdout, /✗ config\.json: missing/)
    assert.match(bad.stdout, /not intact: 1 corrupt, 1 missing; 1 of 3 files match the digests huggingface_hub recorded/)
    assert.match(bad.stdout, new RegExp(`fix: mtune verify hf://ORG/NAME --local-dir ${tree} --repair \\(the repo it was pulled from\\)`))
    const repaired = await runCli(['verify', 'hf://acme/checked', '--local-dir', tree, '--repair'], env)
    assert.equal(repaired.code, 0, repaired.stdout + repaired.stderr)
    assert.equal((await runCli(['verify', tree], env)).code, 0, 'the repair recorded what it fetched again')
  })

  it('a model pulled in part is intact: the rest is "not pulled", and --repair leaves it on the hub', async () => {
    const cdn = await startCdn()
    const hub = await startFakeHf([repo()], {cdn})
    closers.push(() => hub.close(), () => cdn.close())
    const home = dir('hf')
    const env = {HF_ENDPOINT: hub.origin, HF_HOME: home, HF_HUB_CACHE: join(home, 'hub'), HF_TOKEN: ''}
    assert.equal((await runCli(['pull', 'hf://acme/checked', '--include', '*.json'], env)).code, 0)
    const r = await runCli(['verify', 'hf://acme/checked'], env)
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.match(r.stdout, /2 files of the revision were not pulled here, so not checked: model\.safetensors, sub\/shard\.bin; mtune pull hf:\/\/acme\/checked fetches them/)
    assert.match(r.stdout, /✓ intact: 1 of 1 file matches the hub's digests/)
    // Its folder, checked by another user whose cache is elsewhere: the pull that fetches the rest goes into this cache.
    const folder = await runCli(['verify', join(env.HF_HUB_CACHE, 'models--acme--checked')], {...env, HF_HUB_CACHE: join(dir('other'), 'hub')})
    assert.equal(folder.code, 0, folder.stdout + folder.stderr)
    assert.match(folder.stdout, new RegExp(`not pulled here, so not checked: model\\.safetensors, sub/shard\\.bin; HF_HUB_CACHE=${env.HF_HUB_CACHE} mtune pull hf://acme/checked fetches them`))
    const requests = cdn.mirror.requests.length
    const repaired = await runCli(['verify', 'hf://acme/checked', '--repair', '--json'], env)
    assert.equal(repaired.code, 0, repaired.stderr)
    assert.deepEqual(JSON.parse(repaired.stdout).notPulled, ['model.safetensors', 'sub/shard.bin'])
    assert.equal(cdn.mirror.requests.length, requests, 'nothing fetched from the CDN')
    // Naming the files (globs, or a path after the repo) makes an absent one missing, and the fix keeps the names.
    const chosen = await runCli(['verify', 'hf://acme/checked', '--include', '*.safetensors'], env)
    assert.equal(chosen.code, 4, chosen.stdout)
    assert.match(chosen.stdout, /✗ model\.safetensors: missing \(not on disk\)/)
    assert.match(chosen.stdout, /fix: mtune verify hf:\/\/acme\/checked --include '\*\.safetensors' --repair$/m)
    const path = await runCli(['verify', 'hf://acme/checked/sub', '--repair', '--json'], env)
    assert.equal(path.code, 0, path.stdout)
    assert.deepEqual(JSON.parse(path.stdout).repair.files, ['sub/shard.bin'])
    assert.ok(readFileSync(join(home, 'hub', 'models--acme--checked', 'snapshots', COMMIT, 'sub', 'shard.bin')).equals(shard))
    assert.ok(!existsSync(join(home, 'hub', 'models--acme--checked', 'snapshots', COMMIT, 'model.safetensors')), 'no link to a blob that was not pulled')
  })

  it('an interrupted pull is said as one, and --repair resumes it; the fix keeps --local-dir', async () => {
    const {env, blob, repoDir} = await pulledHub()
    // What a pull cut short leaves: the part file (and its journal) where the blob will be.
    rmSync(blob(weights))
    writeFileSync(`${blob(weights)}.part`, weights.subarray(0, MiB))
    const r = await runCli(['verify', 'hf://acme/checked'], env)
    assert.equal(r.code, 4, r.stdout)
    assert.match(r.stdout, /✗ model\.safetensors: interrupted \(a pull was interrupted: mtune pull resumes it\)\n/)
    assert.doesNotMatch(r.stdout, /\.part/, 'named once, by its file')
    // Checked while a pull is writing it (its lock held: here, by this process): said so.
    const held = await PullLock.acquire(`${blob(weights)}.part`)
    const during = await runCli(['verify', 'hf://acme/checked'], env)
    held.release()
    assert.match(during.stdout, new RegExp(`✗ model\\.safetensors: interrupted \\(being pulled now \\(mtune pid ${process.pid}\\): check again once it is done\\)\n`))
    const fixed = await runCli(['verify', 'hf://acme/checked', '--repair'], env)
    assert.equal(fixed.code, 0, fixed.stdout + fixed.stderr)
    assert.ok(readFileSync(blob(weights)).equals(weights))
    assert.ok(!existsSync(`${blob(weights)}.part`))
    // A part file no file of this revision owns is a leftover: --repair removes it.
    writeFileSync(join(repoDir, 'blobs', `${'d'.repeat(64)}.part`), 'x')
    const stray = await runCli(['verify', 'hf://acme/checked', '--repair'], env)
    assert.equal(stray.code, 0, stray.stdout)
    assert.ok(!existsSync(join(repoDir, 'blobs', `${'d'.repeat(64)}.part`)))

    const tree = dir('tree')
    assert.equal((await runCli(['pull', 'hf://acme/checked', '--local-dir', tree], env)).code, 0)
    rmSync(join(tree, 'sub', 'shard.bin'))
    writeFileSync(join(tree, 'sub', 'shard.bin.part'), shard.subarray(0, 100))
    const local = await runCli(['verify', 'hf://acme/checked', '--local-dir', tree], env)
    assert.equal(local.code, 4)
    assert.match(local.stdout, /✗ sub\/shard\.bin: interrupted/)
    assert.ok(local.stdout.includes(`fix: mtune verify hf://acme/checked --local-dir ${tree} --repair`), local.stdout)
  })

  it('pull of a complete model says so; pull --verify re-hashes it and pulls a bad file again', async () => {
    const {env, cdn, blob} = await pulledHub()
    const again = await runCli(['pull', 'hf://acme/checked'], env)
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, /already complete, 3 files present \(found by size; --verify or mtune verify re-hashes them\)/)
    flipByte(blob(shard), 10)
    const before = cdn.mirror.bytesSent
    const checked = await runCli(['pull', 'hf://acme/checked', '--verify'], env)
    assert.equal(checked.code, 0, checked.stderr)
    assert.match(checked.stderr, /sub\/shard\.bin is corrupt on disk .*: pulling it again/)
    assert.ok(cdn.mirror.bytesSent - before >= shard.length && cdn.mirror.bytesSent - before < 1.25 * shard.length, 'only the bad file')
    assert.ok(readFileSync(blob(shard)).equals(shard))
    const clean = await runCli(['pull', 'hf://acme/checked', '--verify'], env)
    assert.match(clean.stdout, /already complete, 3 files present and re-hashed: intact/)
  })

  it('offline, a blob missing behind its link is a dangling link; a ref to no snapshot is reported', async () => {
    const {env, blob, repoDir} = await pulledHub()
    rmSync(blob(shard))
    writeFileSync(join(repoDir, 'refs', 'v2'), 'f'.repeat(40))
    const r = await runCli(['verify', 'hf://acme/checked', '--offline'], {...env, HF_ENDPOINT: 'http://127.0.0.1:9'})
    assert.equal(r.code, 4)
    assert.match(r.stdout, /✗ sub\/shard\.bin: dangling link \(links to blobs\/[0-9a-f]{64}, which is missing\)/)
    assert.match(r.stdout, /✗ refs\/v2: dangling link \(points to snapshot ffffffffffff/)
    const unpulled = await runCli(['verify', 'hf://acme/never'], env)
    assert.equal(unpulled.code, 4)
    assert.match(unpulled.stderr, /hf:\/\/acme\/never is not in the Hugging Face cache \(\S+\): pull it first, or if it was pulled into a plain tree, check that: mtune verify hf:\/\/acme\/never --local-dir DIR$/m)
  })

  it('shares the cache with the official JS client both ways', async () => {
    const cdn = await startCdn()
    const hub = await startFakeHf([repo()], {cdn})
    closers.push(() => hub.close(), () => cdn.close())
    const home = dir('hf')
    const cacheDir = join(home, 'hub')
    const env = {HF_ENDPOINT: hub.origin, HF_HOME: home, HF_HUB_CACHE: cacheDir, HF_TOKEN: ''}
    // The client starts the repo: one file, into the shared cache.
    const started = await downloadFileToCacheDir({repo: 'acme/checked', path: 'config.json', revision: COMMIT, hubUrl: hub.origin, cacheDir})
    assert.ok(readFileSync(started).equals(config))
    // mtune completes it without fetching what the client has.
    const configFetches = () => hub.requests.filter((q) => q.path.includes('/resolve/') && q.path.endsWith('/config.json')).length
    const fetchedByClient = configFetches()
    const r = await runCli(['pull', 'hf://acme/checked', '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(configFetches(), fetchedByClient, 'config.json was not fetched again')
    assert.equal(JSON.parse(r.stdout).results.find((f: {name: string}) => f.name === 'config.json').skipped, true)
    // The client finds mtune's files offline: the snapshot path, without a request.
    const count = hub.requests.length
    const found = await downloadFileToCacheDir({repo: 'acme/checked', path: 'model.safetensors', revision: COMMIT, hubUrl: hub.origin, cacheDir})
    assert.equal(found, join(cacheDir, 'models--acme--checked', 'snapshots', COMMIT, 'model.safetensors'))
    assert.equal(hub.requests.length, count, 'no request')
    assert.equal((await runCli(['verify', 'hf://acme/checked'], env)).code, 0)
  })
})

describe('verify: checksum lists as sha256sum writes them', () => {
  it('reads GNU lines (text, binary, escaped names) and BSD tags, and skips the rest', () => {
    const a = 'a'.repeat(64)
    const B = 'B'.repeat(64)
    const text = [
      `${a}  model-00001-of-00002.safetensors`,
      `${B} *./sub/model.gguf`,
      `\\${a}  odd\\nname\\\\x`,
      `SHA256 (tok.json) = ${a}`,
      '# a comment',
      `MD5 (tok.json) = ${'c'.repeat(32)}`,
      `${'d'.repeat(40)}  sha1-of-something`,
      `${a}  crlf.bin\r`,
    ].join('\n')
    assert.deepEqual(parseChecksumList(text), [
      {name: 'model-00001-of-00002.safetensors', sha256: a},
      {name: 'sub/model.gguf', sha256: 'b'.repeat(64)},
      {name: 'odd\nname\\x', sha256: a},
      {name: 'tok.json', sha256: a},
      {name: 'crlf.bin', sha256: a},
    ])
  })

  it("reads a list written on Windows: a byte order mark before UTF-8, or UTF-16 (PowerShell 5's >)", async () => {
    const a = 'a'.repeat(64)
    const line = `${a}  model.gguf\r\n`
    const utf16be = Buffer.from(line, 'utf16le').swap16()
    for (const bytes of [Buffer.from(`\uFEFF${line}`), Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(line, 'utf16le')]), Buffer.concat([Buffer.from([0xfe, 0xff]), utf16be]), Buffer.from(line)]) {
      assert.deepEqual(parseChecksumList(decodeText(bytes)), [{name: 'model.gguf', sha256: a}], bytes.subarray(0, 2).toString('hex'))
    }
    // Through the CLI: a folder's SHA256SUMS with a BOM checks its first file.
    const d = dir()
    writeFileSync(join(d, 'model.gguf'), shard)
    writeFileSync(join(d, 'SHA256SUMS'), `\uFEFF${sha256(shard)}  model.gguf\r\n`)
    const r = await runCli(['verify', d])
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.match(r.stdout, /intact: 1 of 1 file matches/)
  })
})

describe('mtune verify ollama:// and files', () => {
  it('checks every blob the manifest names, and repairs a corrupt one', async () => {
    const cdn = await startCdn()
    const layer = makeContent(5 * MiB, 33)
    const cfg = Buffer.from('{"model_format":"gguf"}')
    const registry = await startFakeOllama([{namespace: 'library', model: 'tiny', tag: 'latest', blobs: [cfg, layer]}], cdn)
    closers.push(() => registry.close(), () => cdn.close())
    const models = dir('ollama')
    const host = new URL(registry.origin).host
    const source = `ollama://${host}/library/tiny:latest`
    assert.equal((await runCli(['pull', source, '--insecure'], {OLLAMA_MODELS: models})).code, 0)
    const ok = await runCli(['verify', source], {OLLAMA_MODELS: models})
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stdout, /intact: 2 of 2 files match the manifest's digests/)
    flipByte(join(models, 'blobs', `sha256-${sha256(layer)}`), 100)
    // Another model's pull, running or cut, in the store every model shares: a note, left alone.
    const others = join(models, 'blobs', `sha256-${'1'.repeat(64)}-partial`)
    writeFileSync(others, 'x')
    // A partial download of a blob of this model that is complete: a leftover.
    const stale = join(models, 'blobs', `sha256-${sha256(cfg)}-partial-0`)
    writeFileSync(stale, '{}')
    const bad = await runCli(['verify', source], {OLLAMA_MODELS: models})
    assert.equal(bad.code, 4)
    assert.match(bad.stdout, /✗ sha256:[0-9a-f]{12} \(model\): corrupt/)
    assert.match(bad.stdout, new RegExp(`sha256-${sha256(cfg)}-partial-0: left over`))
    assert.match(bad.stdout, /1 partial file of other blobs in the store \(another model's pull, running or cut\): not this model's, left alone/)
    const fixed = await runCli(['verify', source, '--repair', '--insecure'], {OLLAMA_MODELS: models})
    assert.equal(fixed.code, 0, fixed.stdout + fixed.stderr)
    assert.match(fixed.stdout, /✗ sha256:[0-9a-f]{12} \(model\): corrupt[^]*✓ repaired: fetched 1 file: sha256:[0-9a-f]{12} \(model\)\n[^]*✓ intact/, 'what was wrong, then the repair')
    assert.deepEqual([existsSync(others), existsSync(stale)], [true, false])
    // A blob `ollama pull` was cut in the middle of: interrupted, and --repair takes it over.
    const layerPath = join(models, 'blobs', `sha256-${sha256(layer)}`)
    rmSync(layerPath)
    await plantOllamaPartial(layerPath, layer, partsOf(layer.length, 2 * MiB, [2 * MiB, MiB, 0]))
    const cut = await runCli(['verify', source], {OLLAMA_MODELS: models})
    assert.equal(cut.code, 4)
    assert.match(cut.stdout, /✗ sha256:[0-9a-f]{12} \(model\): interrupted \(ollama pull's download of it was cut: mtune pull takes it over\)/)
    const before = cdn.mirror.bytesSent
    const resumed = await runCli(['verify', source, '--repair', '--insecure'], {OLLAMA_MODELS: models})
    assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr)
    assert.ok(cdn.mirror.bytesSent - before <= layer.length - 3 * MiB + 128 * 1024, `fetched ${cdn.mirror.bytesSent - before} bytes: what it held was kept`)
    const quiet = await runCli(['verify', source, '--quiet'], {OLLAMA_MODELS: models})
    assert.deepEqual([quiet.code, quiet.stdout], [0, ''], 'nothing at all when intact')
    assert.ok(readFileSync(join(models, 'blobs', `sha256-${sha256(layer)}`)).equals(layer))
    // Named as Ollama shows it: another registry keeps its namespace (HOST/MODEL would read as NAMESPACE/MODEL).
    const store = await runCli(['verify', models], {OLLAMA_MODELS: models})
    assert.deepEqual([store.code, store.stderr.trim()], [2, `Error: ${models} is an Ollama store, holding ${host}/library/tiny:latest: check a model with mtune verify ollama://${host}/library/tiny:latest`])
    // A blob by its path (cd into the store): checked against its name, the model that names it said.
    const blob = join(models, 'blobs', `sha256-${sha256(layer)}`)
    flipByte(blob, 9)
    const byPath = await runCli(['verify', blob], {OLLAMA_MODELS: models})
    assert.equal(byPath.code, 4, byPath.stderr)
    assert.match(byPath.stdout, new RegExp(`a blob of ${source} in the Ollama store ${models}, checked against its name`))
    assert.match(byPath.stdout, /0 of 1 file matches the digests in the blob names/)
    assert.match(byPath.stdout, new RegExp(`fix: mtune verify ${source} --repair$`, 'm'), 'the repair is the model\'s')
    const elsewhere = await runCli(['verify', blob], {OLLAMA_MODELS: dir('other-store')})
    assert.match(elsewhere.stdout, new RegExp(`fix: OLLAMA_MODELS=${models} mtune verify ollama://`), 'with the store it is in')
    assert.equal((await runCli(['verify', source, '--repair', '--insecure'], {OLLAMA_MODELS: models})).code, 0)
    assert.equal((await runCli(['verify', join(models, 'blobs', `sha256-${sha256(cfg)}`), blob])).code, 0, 'blobs of any store, without OLLAMA_MODELS')
    // A model never pulled into this store is said as one line, as for the Hugging Face cache.
    const missing = await runCli(['verify', `ollama://${host}/library/other:latest`, '--insecure'], {OLLAMA_MODELS: models})
    assert.equal(missing.code, 4)
    assert.equal(
      missing.stderr.trim(),
      `Error: ${host}/library/other:latest is not in the Ollama store ${models}: pull it first (mtune pull ollama://${host}/library/other:latest --insecure), or set OLLAMA_MODELS to the store it is in (the Ollama service's is /usr/share/ollama/.ollama/models)`,
    )
  })

  /** A ModelScope hub with owner/tiny (model.bin and configuration.json) at master. */
  async function modelscopeTiny() {
    const cdn = await startCdn()
    const files = [
      {path: 'model.bin', content: shard},
      {path: 'configuration.json', content: config},
    ]
    const ms = await startFakeModelscope([{id: 'owner/tiny', revision: 'master', files}], cdn)
    closers.push(() => ms.close(), () => cdn.close())
    return ms
  }

  it('modelscope:// against the hub\'s sha256s; says so when the listing does not come', async () => {
    const ms = await modelscopeTiny()
    const env = {MODELSCOPE_ENDPOINT: ms.origin, MODELSCOPE_CACHE: dir('modelscope')}
    assert.equal((await runCli(['pull', 'modelscope://owner/tiny'], env)).code, 0)
    const ok = await runCli(['verify', 'modelscope://owner/tiny'], env)
    assert.equal(ok.code, 0, ok.stdout + ok.stderr)
    assert.match(ok.stdout, /intact: 2 of 2 files match the hub's digests/)
    flipByte(join(env.MODELSCOPE_CACHE, 'models', 'owner--tiny', 'snapshots', 'master', 'model.bin'), 3)
    const bad = await runCli(['verify', 'modelscope://owner/tiny', '--json'], env)
    assert.equal(bad.code, 4)
    assert.equal(JSON.parse(bad.stdout).files.find((f: {name: string}) => f.name === 'model.bin').status, 'corrupt')
    const fixed = await runCli(['verify', 'modelscope://owner/tiny', '--repair'], env)
    assert.equal(fixed.code, 0, fixed.stdout + fixed.stderr)
    // Its snapshot folder, reached with cd, from another user's setting: the same check, in that cache.
    const snapshot = join(env.MODELSCOPE_CACHE, 'models', 'owner--tiny', 'snapshots', 'master')
    const viaFolder = await runCli(['verify', '.'], {...env, MODELSCOPE_CACHE: dir('elsewhere')}, {cwd: snapshot})
    assert.equal(viaFolder.code, 0, viaFolder.stdout + viaFolder.stderr)
    assert.match(viaFolder.stdout, new RegExp(`^• \\. is the ModelScope cache's copy of owner/tiny: checked as MODELSCOPE_CACHE=${env.MODELSCOPE_CACHE} mtune verify modelscope://owner/tiny --revision master\n✓ intact: 2 of 2 files match the hub's digests`))
    const offline = await runCli(['verify', 'modelscope://owner/tiny'], {...env, MODELSCOPE_ENDPOINT: 'http://127.0.0.1:9'})
    assert.equal(offline.code, 3)
    assert.match(offline.stderr, /ModelScope's file list \(with the digests\) did not come/)
    const never = await runCli(['verify', 'modelscope://owner/tiny@v2'], env)
    assert.equal(never.code, 4)
    assert.match(never.stderr, /^Error: modelscope:\/\/owner\/tiny@v2 is not in the ModelScope cache \(.*owner--tiny\/snapshots\/v2\): pull it first/)
  })

  it("a tree pull --local-dir put a ModelScope model into is checked as its source, from mtune's record (the tree has none)", async () => {
    const ms = await modelscopeTiny()
    // The hub only through --endpoint, as a user of modelscope.ai gives it: the record keeps it.
    const env = {MODELSCOPE_ENDPOINT: 'http://127.0.0.1:9', MODELSCOPE_CACHE: dir('modelscope'), XDG_CACHE_HOME: dir('xdg')}
    const tree = join(dir('tree'), 'tiny')
    const pulled = await runCli(['pull', 'modelscope://owner/tiny', '--local-dir', tree, '--endpoint', ms.origin], env)
    assert.equal(pulled.code, 0, pulled.stderr)
    // Pulled again, it adds no second record.
    assert.equal((await runCli(['pull', 'modelscope://owner/tiny', '--local-dir', tree, '--endpoint', ms.origin], env)).code, 0)
    assert.equal(readFileSync(join(env.XDG_CACHE_HOME, 'mtune', 'pulled.jsonl'), 'utf8').trim().split('\n').length, 1)
    const ok = await runCli(['verify', '.'], env, {cwd: tree})
    assert.equal(ok.code, 0, ok.stdout + ok.stderr)
    assert.match(ok.stdout, new RegExp(`^• \\. holds modelscope://owner/tiny@master, which mtune pull put there: checked as mtune verify modelscope://owner/tiny --revision master --local-dir \\. --endpoint ${ms.origin}\n✓ intact: 2 of 2 files match the hub's digests`))
    flipByte(join(tree, 'model.bin'), 3)
    const bad = await runCli(['verify', tree], env)
    assert.equal(bad.code, 4, bad.stdout)
    assert.match(bad.stdout, /✗ model\.bin: corrupt/)
    assert.match(bad.stdout, new RegExp(`fix: mtune verify ${tree} --repair`))
    const fixed = await runCli(['verify', tree, '--repair'], env)
    assert.equal(fixed.code, 0, fixed.stdout + fixed.stderr)
    assert.ok(readFileSync(join(tree, 'model.bin')).equals(shard))
    // A record that cannot be written does not fail the pull; --debug says what it costs.
    const blocked = join(dir('xdg'), 'a-file')
    writeFileSync(blocked, '')
    const other = join(dir('tree'), 'tiny')
    const unrecorded = await runCli(['pull', 'modelscope://owner/tiny', '--local-dir', other, '--endpoint', ms.origin, '--debug'], {...env, XDG_CACHE_HOME: blocked})
    assert.equal(unrecorded.code, 0, unrecorded.stderr)
    assert.match(unrecorded.stderr, new RegExp(`could not record the pull in ${blocked}/mtune/pulled\\.jsonl \\(.*\\): mtune verify ${other} will not know its source`))
  })

  it('a plain file against --sha256 or the FILE.sha256 beside it', async () => {
    const d = dir()
    const file = join(d, 'model.bin')
    writeFileSync(file, shard)
    assert.equal((await runCli(['verify', file, '--sha256', sha256(shard)])).code, 0)
    // A digest is read as pull reads it: a whole sha256sum line pasted is said to be one.
    const line = await runCli(['verify', file, '--sha256', `${sha256(shard)}  model.bin`])
    assert.deepEqual([line.code, line.stderr.trim()], [2, `Error: invalid sha256 "${sha256(shard)}  model.bin": that is a sha256sum line; give its digest alone: --sha256 ${sha256(shard)}`])
    const none = await runCli(['verify', file])
    assert.equal(none.code, 2)
    assert.match(none.stderr, /nothing to check .* against: give --sha256 HEX, or put model\.bin\.sha256 beside it/)
    writeFileSync(`${file}.sha256`, `${sha256(shard)}  model.bin\n`)
    assert.equal((await runCli(['verify', file])).code, 0)
    // A hub repo's flags are refused for a file, not ignored: the check would not be the one asked for.
    for (const [flags, said] of [
      [['--revision', 'v2'], 'Error: --revision applies to an hf:// or modelscope:// repo, not to a file PATH'],
      [['--offline'], 'Error: --offline applies to hf:// (its blobs are named by their digests): a file PATH is checked on disk alone anyway'],
      [['--local-dir', d], 'Error: --local-dir applies to an hf:// or modelscope:// repo, not to a file PATH'],
    ] as const) {
      const r = await runCli(['verify', file, ...flags])
      assert.deepEqual([r.code, r.stderr.trim()], [2, said])
    }
    assert.match((await runCli(['verify', 'ollama://llama3', '--local-dir', d])).stderr, /--local-dir applies to an hf:\/\/ or modelscope:\/\/ repo, not to an Ollama model/)
    assert.match((await runCli(['verify', 'modelscope://a/b', '--offline'])).stderr, /ModelScope's cache names files by path, so the hub's digests are needed/)
    assert.match((await runCli(['verify', 'hf://a/b', '--local-dir', d, '--offline'])).stderr, /--offline with --local-dir: give the directory alone \(mtune verify .*\), which is checked offline/)
    flipByte(file, 7)
    const bad = await runCli(['verify', file, '--json'])
    assert.equal(bad.code, 4)
    assert.equal(JSON.parse(bad.stdout).files[0].status, 'corrupt')
    // The fix names a command that can work: --repair has no source for a plain file.
    const told = await runCli(['verify', file])
    assert.match(told.stdout, new RegExp(`fix: pull it again from where it came: mtune pull URL -o \\S*model\\.bin --sha256 ${sha256(shard)}`))
    assert.equal((await runCli(['verify', join(d, 'nope.bin')])).code, 2)
    // Not there yet, but being pulled (or cut short): said as such, exit 4 as for a model.
    writeFileSync(join(d, 'coming.bin.part'), 'x')
    const coming = await runCli(['verify', join(d, 'coming.bin')])
    assert.deepEqual([coming.code, coming.stderr.trim()], [4, `Error: ${join(d, 'coming.bin')} is not there yet: ${join(d, 'coming.bin')}.part is an mtune pull of it that was interrupted; the same mtune pull resumes it, and puts it in place once verified`])
    // One a pull is writing now (it holds the part file's lock: here, this process) is said to be running.
    const held = await PullLock.acquire(join(d, 'coming.bin.part'))
    const running = await runCli(['verify', join(d, 'coming.bin')])
    held.release()
    assert.deepEqual([running.code, running.stderr.trim()], [4, `Error: ${join(d, 'coming.bin')} is not there yet: ${join(d, 'coming.bin')}.part is an mtune pull of it running now (pid ${process.pid}), which puts it in place once verified: check again once it is done`])
    const localFile = await runCli(['verify', 'hf://acme/x', '--local-dir', file])
    assert.deepEqual([localFile.code, localFile.stderr.trim()], [2, `Error: invalid --local-dir "${file}": it is a file; give the directory the model was pulled into`])
    const folder = await runCli(['verify', d])
    assert.equal(folder.code, 2)
    assert.match(folder.stderr, /is a directory: give a file, or put the publisher's SHA256SUMS in it to check what it lists, or for a model pulled into it with --local-dir, its source: mtune verify hf:\/\/ORG\/NAME --local-dir /)
    // A folder of the Hugging Face cache, reached with cd: the repo it holds, and the command for it.
    const cache = join(d, 'hub')
    const snapshot = join(cache, 'datasets--acme--set-v2', 'snapshots', COMMIT)
    mkdirSync(snapshot, {recursive: true})
    const cached = JSON.parse((await runCli(['verify', snapshot, '--offline', '--json'], {HF_HUB_CACHE: join(d, 'elsewhere')})).stdout)
    assert.equal(cached.notes[0], `${snapshot} is the Hugging Face cache's copy of datasets/acme/set-v2: checked as HF_HUB_CACHE=${cache} mtune verify hf://datasets/acme/set-v2 --revision ${COMMIT}`)
    assert.equal(cached.root, join(cache, 'datasets--acme--set-v2'), 'in the cache it is in')
    const here = JSON.parse((await runCli(['verify', join(cache, 'datasets--acme--set-v2'), '--offline', '--json'], {HF_HUB_CACHE: cache})).stdout)
    assert.equal(here.notes[0], `${join(cache, 'datasets--acme--set-v2')} is the Hugging Face cache's copy of datasets/acme/set-v2: checked as mtune verify hf://datasets/acme/set-v2`, 'no HF_HUB_CACHE= where it is the cache already')
    // Deeper folders are not a repo's copy: the command for it.
    mkdirSync(join(snapshot, 'sub'))
    const deeper = await runCli(['verify', join(snapshot, 'sub')], {HF_HUB_CACHE: cache})
    assert.deepEqual([deeper.code, deeper.stderr.trim()], [2, `Error: ${join(snapshot, 'sub')} is a directory: the Hugging Face cache's copy of datasets/acme/set-v2; check it with: mtune verify hf://datasets/acme/set-v2 --revision ${COMMIT}`])
    // The cache itself: what it holds, and how to check one of them.
    const root = await runCli(['verify', cache], {HF_HUB_CACHE: join(d, 'elsewhere')})
    assert.deepEqual([root.code, root.stderr.trim()], [2, `Error: ${cache} is the Hugging Face cache, holding datasets/acme/set-v2: check one with HF_HUB_CACHE=${cache} mtune verify hf://datasets/acme/set-v2`])
  })

  it('a file mtune pull put in place from a URL: against the sha256 it recorded, and --repair fetches it again', async () => {
    const {m, file, xdg} = await pulledFromUrl()
    const good = await runCli(['verify', file], xdg)
    assert.equal(good.code, 0, good.stderr)
    assert.match(good.stdout, new RegExp(`model\\.bin: checked against the sha256 mtune pull found on \\d{4}-\\d\\d-\\d\\d, pulling it from ${m.url}\n`))
    assert.match(good.stdout, /intact: 1 of 1 file matches the sha256 mtune pull recorded/)
    assert.equal((await runCli(['verify', file])).code, 2, 'another home has no record of it: nothing to check against')
    flipByte(file, 7)
    const bad = await runCli(['verify', file, '--json'], xdg)
    assert.equal(bad.code, 4)
    assert.deepEqual([JSON.parse(bad.stdout).against, JSON.parse(bad.stdout).files[0].status], ['pulled', 'corrupt'])
    assert.match((await runCli(['verify', file], xdg)).stdout, /fix: mtune verify \S*model\.bin --repair$/m)
    const repaired = await runCli(['verify', file, '--repair'], xdg)
    assert.equal(repaired.code, 0, repaired.stdout + repaired.stderr)
    assert.match(repaired.stdout, /repaired: fetched 1 file: model\.bin/)
    assert.equal(sha256(readFileSync(file)), sha256(shard))
    // Gone altogether: missing, and fetched again.
    unlinkSync(file)
    assert.equal((await runCli(['verify', file], xdg)).code, 4)
    assert.equal((await runCli(['verify', file, '--repair'], xdg)).code, 0)
    assert.equal(sha256(readFileSync(file)), sha256(shard))
  })

  it("keeps neither a URL's password nor its query in the record, and a pull -i list's files are recorded too", async () => {
    const m = await startMirror({content: shard, authorize: (req) => (req.headers.authorization === `Basic ${Buffer.from('joe:s3cret').toString('base64')}` ? undefined : 401)})
    closers.push(() => m.close())
    const d = dir()
    const xdg = {XDG_CACHE_HOME: dir('xdg')}
    const signed = m.url.replace('http://', 'http://joe:s3cret@') + '?X-Amz-Signature=deadbeef'
    assert.equal((await runCli(['pull', signed, '-o', join(d, 'signed.bin')], xdg)).code, 0)
    const record = readFileSync(join(xdg.XDG_CACHE_HOME, 'mtune', 'pulled.jsonl'), 'utf8')
    assert.doesNotMatch(record, /s3cret|deadbeef|joe/)
    flipByte(join(d, 'signed.bin'), 1)
    const repair = await runCli(['verify', join(d, 'signed.bin'), '--repair'], xdg)
    assert.equal(repair.code, 4)
    assert.match(repair.stdout, /not repaired: pull it again with its whole URL \(its credentials and query were not recorded\): mtune pull URL -o \S*signed\.bin --sha256 [0-9a-f]{64} --force/)
    // With a file whose whole URL is on record: that one is fetched again, the other said.
    const open = await startMirror({content: shard})
    closers.push(() => open.close())
    assert.equal((await runCli(['pull', open.url, '-o', join(d, 'plain.bin')], xdg)).code, 0)
    flipByte(join(d, 'plain.bin'), 1)
    const both = await runCli(['verify', join(d, 'signed.bin'), join(d, 'plain.bin'), '--repair'], xdg)
    assert.equal(both.code, 4)
    assert.match(both.stdout, /^• 2 files checked against the sha256 mtune pull found when it pulled them$/m)
    assert.match(both.stdout, /repaired: fetched 1 file: \S*plain\.bin\n/)
    assert.match(both.stdout, /not repaired: \S*signed\.bin: pull it again with its whole URL \(its credentials and query were not recorded\): mtune pull URL -o \S*signed\.bin --sha256 [0-9a-f]{64} --force/)
    assert.equal(sha256(readFileSync(join(d, 'plain.bin'))), sha256(shard))
    // Credentials from ~/.netrc are the user's for that host still: the record's URL is whole, and --repair finds them again.
    const netrc = join(dir('home'), '.netrc')
    writeFileSync(netrc, `machine 127.0.0.1 login joe password s3cret\n`, {mode: 0o600})
    assert.equal((await runCli(['pull', m.url, '-o', join(d, 'netrc.bin')], {...xdg, NETRC: netrc})).code, 0)
    flipByte(join(d, 'netrc.bin'), 1)
    const fromNetrc = await runCli(['verify', join(d, 'netrc.bin'), '--repair'], {...xdg, NETRC: netrc})
    assert.equal(fromNetrc.code, 0, fromNetrc.stdout + fromNetrc.stderr)
    const list = join(d, 'urls.txt')
    writeFileSync(list, `${m.url.replace('http://', 'http://joe:s3cret@')}\n  out=listed.bin\n`)
    assert.equal((await runCli(['pull', '-i', list, '-o', `${d}/`], xdg)).code, 0)
    const listed = await runCli(['verify', join(d, 'listed.bin')], xdg)
    assert.equal(listed.code, 0, listed.stderr)
    assert.match(listed.stdout, /matches the sha256 mtune pull recorded/)
  })

  it("run as root with another user's home (sudo -E), leaves the record, and the folders it made for it, to that user", async () => {
    const m = await startMirror({content: shard})
    closers.push(() => m.close())
    const root = process.getuid?.() === 0
    // The user's home, with no ~/.cache yet: everything below it is made by this pull.
    const home = dir('home')
    if (root) chownSync(home, 65534, 65534)
    const file = join(dir(), 'model.bin')
    assert.equal((await runCli(['pull', m.url, '-o', file], {XDG_CACHE_HOME: '', HOME: home})).code, 0)
    const want = root ? 65534 : process.getuid?.()
    for (const path of [join(home, '.cache'), join(home, '.cache', 'mtune'), join(home, '.cache', 'mtune', 'pulled.jsonl')]) assert.equal(lstatSync(path).uid, want, path)
    assert.equal(lstatSync(join(home, '.cache', 'mtune', 'pulled.jsonl')).mode & 0o777, 0o600)
  })

  it('a re-run of the same pull keeps the file it put in place, unless the file or the server\'s changed', async () => {
    const {m, d, file, xdg} = await pulledFromUrl()
    const again = await runCli(['pull', m.url, '-o', file], xdg)
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stderr, /model\.bin is the file mtune pulled from this URL on \d{4}-\d\d-\d\d, and the server's is unchanged: kept/)
    assert.equal(readFileSync(join(xdg.XDG_CACHE_HOME, 'mtune', 'pulled.jsonl'), 'utf8').trim().split('\n').length, 1, 'a re-run adds no line')
    // Another user's pull, or another URL to the same place, is no earlier pull of this one.
    assert.equal((await runCli(['pull', m.url, '-o', file])).code, 2)
    assert.equal((await runCli(['pull', `${m.url}?v=2`, '-o', file], xdg)).code, 2, 'another query is another URL')
    // A list of the same URL into the same place is the same pull too.
    const list = join(dir(), 'urls.txt')
    writeFileSync(list, `${m.url}\n`)
    const listed = await runCli(['pull', '-i', list, '-o', `${d}/`], xdg)
    assert.equal(listed.code, 0, listed.stderr)
    assert.match(listed.stdout, /already complete, 1 file present \(their digests match\)/)
    flipByte(file, 9)
    const broken = await runCli(['pull', m.url, '-o', file], xdg)
    assert.deepEqual([broken.code, broken.stderr.trim()], [4, `Error: ${file} is no longer the file mtune pulled from this URL on ${new Date().toISOString().slice(0, 10)} (changed on disk since): mtune verify ${file} --repair fetches it again, or --force`])
    assert.equal((await runCli(['pull', '-i', list, '-o', `${d}/`], xdg)).code, 4)
    assert.equal((await runCli(['pull', m.url, '-o', file, '--force'], xdg)).code, 0)
    // A new version on the server is no re-run: refused as any file in the way is.
    m.setOptions({changeAfter: {requests: 0, content: makeContent(shard.length, 77)}})
    const newer = await runCli(['pull', m.url, '-o', file], xdg)
    assert.equal(newer.code, 2)
    assert.match(newer.stderr, /already exists, as large as the server's file/)
  })

  it('a re-run against a server that names no version (no ETag, no Last-Modified) goes by its size, and says so', async () => {
    const m = await startMirror({content: shard, etag: false, lastModified: false})
    closers.push(() => m.close())
    const file = join(dir(), 'model.bin')
    const xdg = {XDG_CACHE_HOME: dir('xdg')}
    assert.equal((await runCli(['pull', m.url, '-o', file], xdg)).code, 0)
    const again = await runCli(['pull', m.url, '-o', file], xdg)
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stderr, /model\.bin is the file mtune pulled from this URL on \S+, and the server's has the same size \(it names no version: no ETag or Last-Modified\): kept/)
    m.setOptions({changeAfter: {requests: 0, content: makeContent(shard.length + 1, 78)}})
    assert.equal((await runCli(['pull', m.url, '-o', file], xdg)).code, 2, 'another size is another file')
  })

  it('a directory a pull -i list filled: its files against what mtune pull recorded, and --repair', async () => {
    const m = await startMirror({content: shard, files: new Map([['b.bin', weights]])})
    closers.push(() => m.close())
    const d = join(dir(), 'models')
    const xdg = {XDG_CACHE_HOME: dir('xdg')}
    const list = join(dir(), 'urls.txt')
    writeFileSync(list, `${m.url}\n${m.url.replace(/model\.bin$/, 'b.bin')}\n`)
    assert.equal((await runCli(['pull', '-i', list, '-o', `${d}/`], xdg)).code, 0)
    writeFileSync(join(d, 'README.md'), 'notes\n')
    const good = await runCli(['verify', d], xdg)
    assert.equal(good.code, 0, good.stdout + good.stderr)
    assert.match(good.stdout, new RegExp(`^• 2 files checked against the sha256 mtune pull found when it pulled them into ${d}\n• 1 file in it with no record, not checked\n`, 'm'))
    flipByte(join(d, 'b.bin'), 3)
    const bad = await runCli(['verify', d], xdg)
    assert.equal(bad.code, 4)
    assert.match(bad.stdout, /✗ b\.bin: corrupt/)
    assert.match(bad.stdout, /fix: mtune verify \S+models --repair$/m)
    const repaired = await runCli(['verify', d, '--repair'], xdg)
    assert.equal(repaired.code, 0, repaired.stdout + repaired.stderr)
    assert.match(repaired.stdout, /repaired: fetched 1 file: b\.bin/)
    assert.equal(sha256(readFileSync(join(d, 'b.bin'))), sha256(weights))
    // A shard gone from beside the others is missing, and --repair fetches it again.
    rmSync(join(d, 'b.bin'))
    const gone = await runCli(['verify', d, '--json'], xdg)
    assert.equal(gone.code, 4, gone.stdout)
    const report = JSON.parse(gone.stdout)
    assert.deepEqual(report.files.map((f: {name: string; status: string}) => `${f.name} ${f.status}`).sort(), ['b.bin missing', 'model.bin ok'])
    const back = await runCli(['verify', d, '--repair'], xdg)
    assert.equal(back.code, 0, back.stdout + back.stderr)
    assert.match(back.stdout, /repaired: fetched 1 file: b\.bin/)
    assert.equal(sha256(readFileSync(join(d, 'b.bin'))), sha256(weights))
    // Gone with its part file there (a pull of it again, cut): interrupted, and --repair resumes it.
    rmSync(join(d, 'b.bin'))
    writeFileSync(join(d, 'b.bin.part'), weights.subarray(0, 1000))
    const cut = await runCli(['verify', d], xdg)
    assert.equal(cut.code, 4, cut.stdout)
    assert.match(cut.stdout, /✗ b\.bin: interrupted \(a pull was interrupted: mtune pull resumes it\)/)
    assert.match(cut.stdout, /not intact: 1 interrupted; 1 of 2 files match/)
    assert.doesNotMatch(cut.stdout, /missing/)
    const resumed = await runCli(['verify', d, '--repair'], xdg)
    assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr)
    assert.match(resumed.stdout, /repaired: fetched 1 file: b\.bin/)
    assert.equal(sha256(readFileSync(join(d, 'b.bin'))), sha256(weights))
    assert.ok(!existsSync(join(d, 'b.bin.part')))
    // The file alone, as for the folder.
    rmSync(join(d, 'b.bin'))
    writeFileSync(join(d, 'b.bin.part'), weights.subarray(0, 1000))
    const cutFile = await runCli(['verify', join(d, 'b.bin')], xdg)
    assert.equal(cutFile.code, 4, cutFile.stdout)
    assert.match(cutFile.stdout, /✗ b\.bin: interrupted \(a pull was interrupted: mtune pull resumes it\)[^]*not intact: 1 interrupted; 0 of 1 file matches/)
    const resumedFile = await runCli(['verify', join(d, 'b.bin'), '--repair'], xdg)
    assert.equal(resumedFile.code, 0, resumedFile.stdout + resumedFile.stderr)
    assert.equal(sha256(readFileSync(join(d, 'b.bin'))), sha256(weights))
    assert.ok(!existsSync(join(d, 'b.bin.part')))
    // With every recorded file gone, the folder is no longer those pulls': nothing recorded to check.
    rmSync(join(d, 'b.bin'))
    rmSync(join(d, 'model.bin'))
    const emptied = await runCli(['verify', d], xdg)
    assert.equal(emptied.code, 2, emptied.stdout)
    assert.match(emptied.stderr, /is a directory: give a file/)
  })

  it("several PATHs, as a shell's glob gives them: each against its own digest, each file once", async () => {
    const d = dir()
    const other = makeContent(100_000, 9)
    mkdirSync(join(d, 'a'))
    mkdirSync(join(d, 'b'))
    writeFileSync(join(d, 'a', 'x.gguf'), shard)
    writeFileSync(join(d, 'a', 'x.gguf.sha256'), `${sha256(shard)}  x.gguf\n`)
    writeFileSync(join(d, 'a', 'README.md'), 'hi\n')
    writeFileSync(join(d, 'b', 'x.gguf'), other)
    writeFileSync(join(d, 'b', 'SHA256SUMS'), `${sha256(other)}  x.gguf\n`)
    const paths = ['a/README.md', 'a/x.gguf', 'a/x.gguf.sha256', 'b/SHA256SUMS', 'b/x.gguf'].map((p) => join(d, p))
    const all = await runCli(['verify', ...paths, '--json'], {}, {cwd: d})
    assert.equal(all.code, 0, all.stderr)
    const doc = JSON.parse(all.stdout)
    assert.deepEqual(doc.files.map((f: {name: string; status: string}) => `${f.name} ${f.status}`), ['a/README.md unchecked', 'a/x.gguf ok', 'b/x.gguf ok'], 'named from here, each once')
    assert.equal(doc.against, 'each')
    assert.match(doc.notes.join('\n'), /no digest for a\/README\.md: not checked/)
    flipByte(join(d, 'b', 'x.gguf'), 3)
    const text = await runCli(['verify', ...paths], {}, {cwd: d})
    assert.equal(text.code, 4)
    assert.match(text.stdout, /✗ b\/x\.gguf: corrupt/)
    assert.match(text.stdout, /not intact: 1 corrupt; 1 of 3 files match the digests found for each \(FILE\.sha256, SHA256SUMS, blob names\); .* 1 with nothing to check against/)
    // `sha256sum -c x.gguf.sha256`: the digest file stands for its file.
    const one = await runCli(['verify', join(d, 'a', 'x.gguf.sha256')])
    assert.equal(one.code, 0, one.stderr)
    const none = await runCli(['verify', join(d, 'a', 'README.md'), join(d, 'a', 'README.md')])
    assert.equal(none.code, 2)
    assert.match(none.stderr, /nothing to check .*README\.md against/)
    const sha = await runCli(['verify', ...paths.slice(1, 3), '--sha256', sha256(shard)])
    assert.deepEqual([sha.code, sha.stderr.trim()], [2, "Error: --sha256 is one file's digest, and 2 PATHs were given: give one, or put FILE.sha256 beside each"])
    const typo = await runCli(['verify', paths[1]!, join(d, 'a', 'x.ggfu')])
    assert.deepEqual([typo.code, typo.stderr.trim()], [2, `Error: ${join(d, 'a', 'x.ggfu')}: no such file; give a PATH or a model source (hf://, ollama://, modelscope://)`])
  })

  it('reads the size a safetensors or GGUF file must have from its own header', () => {
    const d = dir()
    const st = safetensorsFile([{name: 'a', bytes: 100}, {name: 'b', bytes: 28}])
    writeFileSync(join(d, 'm.safetensors'), st)
    assert.deepEqual(headerSize(join(d, 'm.safetensors')), {format: 'safetensors', size: st.length, exact: true})
    const q4k: [number, number] = [256, 144]
    const f32: [number, number] = [1, 4]
    for (const alignment of [undefined, 64]) {
      const g = ggufFile([{name: 'tok', dims: [256, 3], type: 12, block: q4k}, {name: 'norm', dims: [5], type: 0, block: f32}], {alignment})
      writeFileSync(join(d, 'm.gguf'), g)
      const said = headerSize(join(d, 'm.gguf'))
      assert.equal(said && 'size' in said && said.exact, false)
      // The last tensor (20 bytes) ends before the file's padding to the alignment.
      assert.equal(said && 'size' in said && said.size, g.length - ((alignment ?? 32) - 20))
    }
    writeFileSync(join(d, 'cut.safetensors'), st.subarray(0, 20))
    assert.deepEqual(headerSize(join(d, 'cut.safetensors')), {format: 'safetensors', truncated: true, problem: 'cut short inside its safetensors header'})
    writeFileSync(join(d, 'bad.gguf'), Buffer.from('GGML0000000000000000'))
    assert.deepEqual(headerSize(join(d, 'bad.gguf')), {format: 'gguf', problem: 'not a valid gguf file: no GGUF magic at its start'})
    writeFileSync(join(d, 'new.gguf'), ggufFile([{name: 't', dims: [64], type: 99, block: [64, 36]}]))
    assert.equal(headerSize(join(d, 'new.gguf')), undefined, 'a tensor type it does not know: no size claimed')
    assert.equal(headerSize(join(d, 'README.md')), undefined)
    // torch.save's zip: complete with its end record, cut short without it; a pickled .bin says nothing.
    const zip = torchZip([{name: 'archive/data.pkl', bytes: 300}, {name: 'archive/data/0', bytes: 5000}])
    writeFileSync(join(d, 'pytorch_model.bin'), zip)
    assert.deepEqual(headerSize(join(d, 'pytorch_model.bin')), {format: 'pytorch', size: zip.length, exact: true})
    writeFileSync(join(d, 'cut.pt'), zip.subarray(0, zip.length - 30))
    assert.deepEqual(headerSize(join(d, 'cut.pt')), {format: 'pytorch', truncated: true, problem: 'cut short: its zip end record is missing (a PyTorch checkpoint is a zip archive)'})
    writeFileSync(join(d, 'old.bin'), Buffer.from([0x80, 0x02, 0x8a, 0x0a]))
    assert.equal(headerSize(join(d, 'old.bin')), undefined)
  })

  it('weights with no digest anywhere: complete or cut short by their own headers, a folder with its shards', async () => {
    const d = dir()
    const gguf = ggufFile([{name: 'w', dims: [256, 4], type: 12, block: [256, 144]}])
    writeFileSync(join(d, 'model-Q4_K_M.gguf'), gguf)
    const ok = await runCli(['verify', join(d, 'model-Q4_K_M.gguf')])
    assert.equal(ok.code, 0, ok.stdout + ok.stderr)
    assert.match(ok.stdout, /no digest for model-Q4_K_M\.gguf: checked against what its own header says \(a size; a zip's end record\), not the bytes themselves/)
    assert.match(ok.stdout, /✓ complete: 1 of 1 file matches what their own headers say/)
    writeFileSync(join(d, 'model-Q4_K_M.gguf'), gguf.subarray(0, gguf.length - 100))
    const cut = await runCli(['verify', join(d, 'model-Q4_K_M.gguf')])
    assert.equal(cut.code, 4)
    assert.match(cut.stdout, /✗ model-Q4_K_M\.gguf: truncated \(\d+ of \d+ bytes\)/)
    assert.match(cut.stdout, /✗ not complete: 1 truncated; 0 of 1 file matches what their own headers say\n  fix: fetch it again from where it came \(mtune pull URL -o PATH\); a model's hub has the digests/)
    // A folder as a copy or a --local-dir tree leaves it: index, shards, a config.
    const model = join(d, 'llama')
    mkdirSync(model)
    const shard = safetensorsFile([{name: 'x', bytes: 4096}])
    writeFileSync(join(model, 'model-00001-of-00003.safetensors'), shard)
    writeFileSync(join(model, 'model-00002-of-00003.safetensors'), shard.subarray(0, shard.length - 1))
    const index = {weight_map: {x: 'model-00001-of-00003.safetensors', y: 'model-00002-of-00003.safetensors', z: 'model-00003-of-00003.safetensors'}}
    writeFileSync(join(model, 'model.safetensors.index.json'), JSON.stringify(index))
    writeFileSync(join(model, 'config.json'), '{}')
    const tree = await runCli(['verify', model, '--json'])
    assert.equal(tree.code, 4, tree.stderr)
    const doc = JSON.parse(tree.stdout)
    assert.equal(doc.against, 'header')
    assert.deepEqual(doc.files.map((f: {name: string; status: string}) => `${f.name} ${f.status}`), [
      'model-00001-of-00003.safetensors ok',
      'model-00002-of-00003.safetensors truncated',
      'model-00003-of-00003.safetensors missing',
    ])
    assert.match(doc.notes.join('\n'), /2 other files \(configs, tokenizers\) not checked/)
    assert.match(doc.notes.join('\n'), /for the bytes themselves, check it against its hub: mtune verify hf:\/\/ORG\/NAME --local-dir /)
    const said = await runCli(['verify', model])
    assert.match(said.stdout, new RegExp(`✗ not complete: 1 truncated, 1 missing; 1 of 3 files match what their own headers say\n  fix: .* --local-dir ${model} --repair`))
    // Several, as a glob gives them: one line for those checked by size, the header problems kept.
    writeFileSync(join(model, 'bad.gguf'), 'GGML')
    const glob = await runCli(['verify', join(model, 'bad.gguf'), join(model, 'model-00001-of-00003.safetensors'), join(model, 'config.json')], {}, {cwd: model})
    assert.equal(glob.code, 4, glob.stderr)
    assert.match(glob.stdout, /✗ bad\.gguf: corrupt \(not a valid gguf file: no GGUF magic at its start\)/)
    assert.match(glob.stdout, /• no digest for model-00001-of-00003\.safetensors: checked against what its own header says \(a size; a zip's end record\)/)
    assert.match(glob.stdout, /• no digest for config\.json: not checked/)
    // A digest, where there is one, comes first.
    writeFileSync(join(d, 'model-Q4_K_M.gguf.sha256'), `${sha256(gguf)}  model-Q4_K_M.gguf\n`)
    const digest = await runCli(['verify', join(d, 'model-Q4_K_M.gguf')])
    assert.equal(digest.code, 4)
    assert.match(digest.stdout, /✗ model-Q4_K_M\.gguf: corrupt \(sha256 /)
    assert.match(digest.stdout, /0 of 1 file matches the given sha256/)
    // One part of a split GGUF named alone: checked as that file, the parts not beside it said.
    const split = join(dir(), 'm-00001-of-00003.gguf')
    writeFileSync(split, gguf)
    writeFileSync(split.replace('00001-of', '00003-of'), gguf)
    const part = await runCli(['verify', split])
    assert.equal(part.code, 0, part.stdout)
    assert.match(part.stdout, new RegExp(`• m-00001-of-00003\\.gguf is one of 3 parts, and part 2 is not beside it: a runtime loads none without all \\(mtune verify ${dirname(split)} checks the folder\\)`))
  })

  it("a file, or a whole directory, against the publisher's SHA256SUMS beside it, as sha256sum -c reads it", async () => {
    const d = dir()
    const other = makeContent(200_000, 8)
    mkdirSync(join(d, 'sub'))
    writeFileSync(join(d, 'model.gguf'), shard)
    writeFileSync(join(d, 'sub', 'b.bin'), other)
    const list = [`${sha256(shard)}  model.gguf`, `${sha256(other)} *./sub/b.bin`, `${sha256(other)}  gone.bin`, `${sha256(other)}  ../outside.bin`].join('\n')
    writeFileSync(join(d, 'SHA256SUMS'), `${list}\n`)
    const one = await runCli(['verify', join(d, 'model.gguf')])
    assert.equal(one.code, 0, one.stderr)
    assert.match(one.stdout, new RegExp(`intact: 1 of 1 file matches the digests in ${join(d, 'SHA256SUMS')}`))
    const all = await runCli(['verify', d, '--json'])
    assert.equal(all.code, 4, all.stderr)
    const doc = JSON.parse(all.stdout)
    const given = await runCli(['verify', join(d, 'SHA256SUMS'), '--json'])
    assert.deepEqual(JSON.parse(given.stdout).files, doc.files, 'the list itself, as sha256sum -c is given it')
    assert.equal(doc.against, 'list')
    assert.equal(doc.checksumList, join(d, 'SHA256SUMS'))
    assert.deepEqual(doc.files.map((f: {name: string; status: string}) => [f.name, f.status]), [['model.gguf', 'ok'], ['sub/b.bin', 'ok'], ['gone.bin', 'missing']])
    assert.ok(doc.notes.some((n: string) => /names "\.\.\/outside\.bin", which is no path inside .*: not checked/.test(n)), 'a name outside the directory is not followed')
    flipByte(join(d, 'sub', 'b.bin'), 3)
    const text = await runCli(['verify', d])
    assert.match(text.stdout, /✗ sub\/b\.bin: corrupt/)
    assert.match(text.stdout, /not intact: 1 corrupt, 1 missing; 1 of 3 files match the digests in /)
    assert.match(text.stdout, /fix: pull each again from where they came: mtune pull URL -o PATH --sha256 HEX, with the HEX from /)
    // FILE.sha256 and --sha256 come first: the user's own word.
    writeFileSync(join(d, 'sub', 'SHA256SUMS'), `${sha256(shard)}  b.bin\n`)
    assert.equal((await runCli(['verify', join(d, 'sub', 'b.bin'), '--sha256', sha256(other)])).code, 4, 'flipped, whatever the list says')
    writeFileSync(join(d, 'empty'), '')
    mkdirSync(join(d, 'nolist'))
    writeFileSync(join(d, 'nolist', 'sha256sums.txt'), 'not a checksum\n')
    const empty = await runCli(['verify', join(d, 'nolist')])
    assert.deepEqual([empty.code, empty.stderr.trim()], [2, `Error: ${join(d, 'nolist', 'sha256sums.txt')} lists no sha256 (sha256sum's format: HEX  NAME): fix it, or verify each file with --sha256 HEX`])
  })
})
