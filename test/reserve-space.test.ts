import assert from 'node:assert/strict'
import {existsSync, statSync, truncateSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {MtuneError} from '../src/lib/errors.js'
import {bytesToWrite} from '../src/lib/transfer/destination.js'
import {pull, type PullOptions} from '../src/lib/transfer/engine.js'
import {partFileOpener, type OpenPartFile} from '../src/lib/transfer/part-file.js'
import {RESERVE_FROM, reserveFor, reserveSpace, type FallocateRun} from '../src/lib/transfer/reserve-space.js'
import {makeContent, mirrors, sha256} from './support/mirror-server.js'
import {tempDir} from './support/temp.js'

const MiB = 1024 * 1024
const content = makeContent(RESERVE_FROM + 8 * MiB, 3)
const mirror = mirrors(content, after)

/** fallocate(1) as it answers on a disk with no room: it may have allocated some blocks by then. */
const diskFull: FallocateRun = async ([, , path]) => {
  writeFileSync(path!, Buffer.alloc(MiB, 1), {flag: 'r+'})
  return {exitCode: 1, stderr: 'fallocate: fallocate failed: No space left on device\n'}
}

/** A disk where each fresh file takes a good part of the free space: its blocks are reserved, through `run`. */
const tight =
  (run?: FallocateRun): OpenPartFile =>
  (path, size, fresh, o) =>
    partFileOpener(run && ((p, s) => reserveSpace(p, s, run)))(path, size, fresh, {...o, reserve: true})

async function run(options: PullOptions) {
  const lines: string[] = []
  const result = await pull({connections: 4, chunkSize: 1 * MiB, stallTimeoutMs: 5_000, random: () => 0.5, ...options}, {debug: (m) => lines.push(m), info: (m) => lines.push(m), warn: (m) => lines.push(m)})
  return {result, lines}
}

describe('reserving a pull’s space up front', () => {
  it('allocates the blocks of a sparse file, or says why the filesystem cannot', async () => {
    const path = join(tempDir('reserve'), 'model.bin.part')
    writeFileSync(path, 'kept')
    truncateSync(path, RESERVE_FROM)
    const outcome = await reserveSpace(path, RESERVE_FROM)
    const s = statSync(path)
    assert.equal(s.size, RESERVE_FROM, 'the length is the file’s')
    if (outcome.reserved) assert.ok(s.blocks * 512 >= RESERVE_FROM, `${s.blocks * 512} bytes allocated`)
    else assert.match(outcome.why, /\S/, 'a filesystem that cannot reserve is said why')
  })

  it('reads fallocate’s refusals: no room is an error, no support and no command are not', async () => {
    const saying = (stderr: string): FallocateRun => async () => ({exitCode: 1, stderr})
    await assert.rejects(reserveSpace('/x', 1, saying('fallocate: fallocate failed: No space left on device\n')), {code: 'ENOSPC', syscall: 'fallocate', path: '/x'})
    await assert.rejects(reserveSpace('/x', 1, saying('fallocate: fallocate failed: Disk quota exceeded\n')), {code: 'ENOSPC'})
    assert.deepEqual(await reserveSpace('/x', 1, saying('fallocate: fallocate failed: Operation not supported\n')), {reserved: false, why: 'fallocate failed: Operation not supported'})
    assert.deepEqual(await reserveSpace('/x', 1, async () => ({missing: true})), {reserved: false, why: 'the fallocate command (util-linux) is not installed'})
    assert.deepEqual(await reserveSpace('/x', 1, async () => ({exitCode: 0, stderr: ''})), {reserved: true})
  })

  it('reserves a fresh part file when asked, never a resumed one', async () => {
    const calls: string[] = []
    const counting: FallocateRun = async (args) => {
      calls.push(args.join(' '))
      return {exitCode: 0, stderr: ''}
    }
    const open = partFileOpener((path, size) => reserveSpace(path, size, counting))
    const dir = tempDir('reserve')
    await (await open(join(dir, 'small.part'), RESERVE_FROM, true)).close()
    await (await open(join(dir, 'big.part'), RESERVE_FROM, true, {reserve: true})).close()
    await (await open(join(dir, 'big.part'), RESERVE_FROM, false, {reserve: true})).close()
    assert.deepEqual(calls, [`--length ${RESERVE_FROM} ${join(dir, 'big.part')}`])
  })

  it('counts what a resumed part file holds on disk as written, not as needed again', () => {
    const GiB = 1024 * MiB
    assert.equal(bytesToWrite(100 * GiB, 40 * GiB, 100 * GiB + 4096), 0, 'reserved by its first run: nothing more to find')
    assert.equal(bytesToWrite(100 * GiB, 40 * GiB, 40 * GiB), 60 * GiB, 'sparse: the rest is needed')
    assert.equal(bytesToWrite(100 * GiB, 40 * GiB, 0), 60 * GiB, 'another client’s leftover elsewhere: what the journal says')
  })

  it('pulls into a reserved file, says so under --debug, and resumes it', async () => {
    const m = await mirror({perConnectionRate: 16 * MiB})
    const out = join(tempDir('reserve'), 'model.bin')
    const abort = new AbortController()
    const said: string[] = []
    const first = pull({url: m.url, output: out, connections: 4, chunkSize: MiB, signal: abort.signal, openPartFile: tight()}, {debug: (l) => said.push(l)})
    while (m.bytesSent < 8 * MiB) await new Promise((r) => setTimeout(r, 20))
    abort.abort()
    await assert.rejects(first, MtuneError)
    if (said.some((l) => /\breserved /.test(l))) assert.ok(statSync(`${out}.part`).blocks * 512 >= content.length, 'the interrupted file holds its blocks')
    m.setOptions({perConnectionRate: undefined})
    const {result} = await run({url: m.url, output: out})
    assert.equal(result.sha256, sha256(content))
    assert.ok(result.resumedBytes > 0, 'the reserved file was resumed, not started over')
    assert.ok(!existsSync(`${out}.part`))
  })

  it('reserves big files where they take a good part of the free space, not where there is room to spare', () => {
    const GiB = 1024 * MiB
    assert.deepEqual(reserveFor(RESERVE_FROM - 1, 0), {reserve: false}, 'small files are over in moments')
    assert.deepEqual(reserveFor(100 * GiB, 400 * GiB), {reserve: true}, 'a quarter of the free space')
    assert.deepEqual(reserveFor(100 * GiB, undefined), {reserve: true}, 'free space not known')
    assert.deepEqual(reserveFor(100 * GiB, 400 * GiB + 1), {reserve: false, why: '100 GiB is under a quarter of the 400 GiB free'})
  })

  it('says reserved or why not under --debug', async () => {
    const m = await mirror()
    const out = join(tempDir('reserve'), 'model.bin')
    const {result, lines} = await run({url: m.url, output: out})
    assert.equal(result.sha256, sha256(content))
    assert.ok(lines.some((l) => /\breserved 40\.0 MiB on disk for .*model\.bin\.part$|\bnot reserving space for .*model\.bin\.part( \(.+\): the file fills in as it arrives|: 40\.0 MiB is under a quarter of the .+ free)$/.test(l)), lines.join('\n'))
  })

  it('tries once more when the disk ran out while reserving (two pulls reserving at once), and goes on', async () => {
    const m = await mirror()
    const out = join(tempDir('reserve'), 'model.bin')
    let tries = 0
    const oneRace: FallocateRun = async (args) => (++tries === 1 ? diskFull(args) : {exitCode: 0, stderr: ''})
    const {result} = await run({url: m.url, output: out, openPartFile: tight(oneRace)})
    assert.equal(result.sha256, sha256(content))
    assert.equal(tries, 2)
  })

  it('fails at the start when the disk cannot hold the file, and gives back what it took', async () => {
    const m = await mirror()
    const out = join(tempDir('reserve'), 'model.bin')
    const error = await run({url: m.url, output: out, openPartFile: tight(diskFull)}).then(
      () => assert.fail('expected the pull to fail'),
      (e: unknown) => e,
    )
    assert.ok(error instanceof MtuneError, String(error))
    assert.equal(error.exitCode, 5)
    assert.equal(error.code, 'no-space')
    assert.match(error.message, /^not enough space in .+: the disk would not reserve the file's 40\.0 MiB \(something else filled it since the check, .+ free now\); free some space, or choose another -o$/)
    assert.ok(!existsSync(`${out}.part`) && !existsSync(`${out}.part.journal`), 'no part file holds blocks, no journal is left')
  })
})
