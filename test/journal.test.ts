import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {appendFileSync, existsSync, openSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {spawn} from 'node:child_process'
import {basename, dirname, join, relative} from 'node:path'
import {describe, it} from 'node:test'
import {open as openFile, rename, rm} from 'node:fs/promises'
import {PrefixHasher} from '../src/lib/transfer/prefix-hasher.js'
import {InlineHasher} from '../src/lib/transfer/inline-hasher.js'
import {Journal, type FileIdentity, type JournalIo, type Loaded} from '../src/lib/transfer/journal.js'
import {adoptLeftover, adoptedHole, aria2Beside, judgeLeftover, openedElsewhere} from '../src/lib/transfer/adopt.js'
import {RangeSet} from '../src/lib/transfer/range-set.js'
import {aria2Control} from './support/aria2-control.js'
import {plantOllamaPartial, type OllamaPart} from './support/ollama-partial.js'
import {tempDir} from './support/temp.js'

const identity: FileIdentity = {url: 'http://h/f', size: 1000, etag: '"e1"', lastModified: 'Thu, 01 Jan 2026 00:00:00 GMT', ranges: true}
/** As a pull does it: load, then begin before the first write. */
async function open(path: string, id: FileIdentity, bootId: string, io?: JournalIo): Promise<Loaded> {
  const loaded = Journal.load(path, id, bootId, io)
  await loaded.journal.begin()
  return loaded
}
const fresh = () => join(tempDir('journal'), 'f.part.journal')

describe('Journal', () => {
  it('after SIGKILL (same boot) trusts every range written, synced or not', async () => {
    const path = fresh()
    const {journal} = await open(path, identity, 'boot-a')
    journal.recordWritten(0, 100)
    await journal.checkpoint(async () => {})
    journal.recordWritten(500, 600)
    // The append reached the kernel (page cache); no close, no checkpoint: the process died here.
    await journal.flushed()
    const again = await open(path, identity, 'boot-a')
    assert.equal(again.discarded, undefined)
    assert.deepEqual(again.written.toArray(), [
      {start: 0, end: 100},
      {start: 500, end: 600},
    ])
    assert.deepEqual(Journal.firstMissing(path, 'boot-a'), {start: 100, end: 500})
  })

  it('after a power loss (new boot) trusts only what a checkpoint made durable', async () => {
    const path = fresh()
    const {journal} = await open(path, identity, 'boot-a')
    journal.recordWritten(0, 100)
    await journal.checkpoint(async () => {})
    journal.recordWritten(100, 900)
    await journal.flushed()
    const after = await open(path, identity, 'boot-b')
    assert.deepEqual(after.written.toArray(), [{start: 0, end: 100}])
  })

  it('syncs the data before it calls ranges durable', async () => {
    const path = fresh()
    const {journal} = await open(path, identity, 'boot-a')
    journal.recordWritten(0, 10)
    const order: string[] = []
    await journal.checkpoint(async () => {
      order.push('datasync')
      assert.doesNotMatch(existsSync(path) ? readFileSync(path, 'utf8') : '', /^D /m, 'no D line before the data is synced')
    })
    order.push('done')
    assert.match(readFileSync(path, 'utf8'), /^D 0 10$/m)
    assert.deepEqual(order, ['datasync', 'done'])
  })

  it('is first written by the first write that leaves the file incomplete, and never for a file that came whole in one', async () => {
    const ops: string[] = []
    const io: JournalIo = {
      open: async (p, flags) => (ops.push(`open ${basename(p)} ${flags}`), openFile(p, flags)),
      rename: async (a, b) => (ops.push('rename'), rename(a, b)),
      rm: async (p) => (ops.push('rm'), rm(p, {force: true})),
      syncDirectory: async () => {},
    }
    const whole = fresh()
    const one = await open(whole, identity, 'boot-a', io)
    one.journal.recordWritten(0, 1000)
    await one.journal.flushed()
    await one.journal.remove()
    assert.deepEqual(ops, [], 'nothing written, nothing removed')
    assert.ok(!existsSync(whole))
    // In parts: journaled at the first, that range in it, so that a kill right after resumes it.
    const parts = fresh()
    const two = await open(parts, identity, 'boot-a', io)
    assert.ok(!existsSync(parts))
    two.journal.recordWritten(0, 400)
    await two.journal.flushed()
    assert.deepEqual(Journal.firstMissing(parts, 'boot-a'), {start: 400, end: 1000})
    two.journal.recordWritten(400, 1000)
    await two.journal.flushed()
    assert.deepEqual((await open(parts, identity, 'boot-a')).written.toArray(), [{start: 0, end: 1000}])
    await two.journal.remove()
    assert.ok(!existsSync(parts))
    // A size not known: journaled from the start, as before.
    const unknown = fresh()
    await open(unknown, {...identity, size: undefined}, 'boot-a')
    assert.ok(existsSync(unknown))
  })

  it('ignores a torn last line and ranges beyond the file', async () => {
    const path = fresh()
    const {journal} = await open(path, identity, 'boot-a')
    journal.recordWritten(0, 50)
    await journal.close()
    appendFileSync(path, 'W 50 2000\nW 60 7')
    const again = await open(path, identity, 'boot-a')
    assert.deepEqual(again.written.toArray(), [{start: 0, end: 50}])
  })

  it('throws the partial download away when the file changed, and says why', async () => {
    const path = fresh()
    const first = (await open(path, identity, 'boot-a')).journal
    first.recordWritten(0, 100)
    await first.close()
    const changed = await open(path, {...identity, etag: '"e2"'}, 'boot-a')
    assert.match(changed.discarded!, /ETag changed \("e1" -> "e2"\)/)
    assert.equal(changed.written.total, 0)
    const resized = await open(path, {...identity, size: 2000}, 'boot-a')
    assert.match(resized.discarded!, /size changed/)
  })

  it('treats an unreadable journal as no journal', async () => {
    const path = fresh()
    writeFileSync(path, 'garbage')
    assert.equal(Journal.firstMissing(path, 'boot-a'), undefined)
    const loaded = await open(path, identity, 'boot-a')
    assert.match(loaded.discarded!, /unreadable/)
  })

  it('checkpoints off the event loop: while an fsync hangs, the loop turns and writes are still recorded', async () => {
    const path = fresh()
    // A disk whose fsync of the journal takes as long as the test says.
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    let syncing = 0
    const io: JournalIo = {
      open: async (p, flags) => {
        const h = await openFile(p, flags)
        return {write: h.write.bind(h), close: h.close.bind(h), sync: async () => (syncing++, await gate, h.sync())} as never
      },
      rename,
      rm: (p) => rm(p, {force: true}),
      syncDirectory: async () => {},
    }
    const loaded = Journal.load(path, identity, 'boot-a', io)
    await loaded.journal.begin()
    assert.equal(syncing, 0, 'a fresh journal names nothing durable: begin does not fsync it')
    loaded.journal.recordWritten(0, 100)
    const checkpoint = loaded.journal.checkpoint(async () => {})
    // The loop keeps turning until the journal reaches its fsync, and then while it hangs there.
    const deadline = Date.now() + 10_000
    while (syncing === 0 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve))
    assert.equal(syncing, 1, 'the journal is waiting on its fsync')
    let turns = 0
    for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(() => resolve(turns++)))
    assert.equal(turns, 50, 'the event loop kept turning while the fsync hung')
    loaded.journal.recordWritten(100, 200)
    release()
    await checkpoint
    assert.match(readFileSync(path, 'utf8'), /^D 0 100$/m, 'the checkpoint made durable what was written when it began')
    await loaded.journal.checkpoint(async () => {})
    await loaded.journal.flushed()
    assert.match(readFileSync(path, 'utf8'), /^D 0 200$/m, 'both writes durable after the next checkpoint')
    await loaded.journal.close()
  })

  it('begin keeps a resumed journal durable: what it names as durable is not risked', async () => {
    const path = fresh()
    const first = Journal.load(path, identity, 'boot-a')
    await first.journal.begin()
    first.journal.recordWritten(0, 100)
    await first.journal.checkpoint(async () => {})
    await first.journal.close()
    let syncs = 0
    const io: JournalIo = {
      open: async (p, flags) => {
        const h = await openFile(p, flags)
        return {write: h.write.bind(h), close: h.close.bind(h), sync: async () => (syncs++, h.sync())} as never
      },
      rename,
      rm: (p) => rm(p, {force: true}),
      syncDirectory: async () => void syncs++,
    }
    const again = Journal.load(path, identity, 'boot-b', io)
    assert.equal(again.written.total, 100)
    await again.journal.begin()
    assert.equal(syncs, 2, 'the rewrite and its directory were synced')
    await again.journal.close()
  })

  it('reports a journal append that failed on the next record or checkpoint', async () => {
    const path = fresh()
    const io: JournalIo = {
      open: async (p, flags) => {
        const h = await openFile(p, flags)
        const full = Object.assign(new Error('ENOSPC: no space left on device, write'), {code: 'ENOSPC'})
        return {write: flags === 'a' ? async () => Promise.reject(full) : h.write.bind(h), close: h.close.bind(h), sync: h.sync.bind(h)} as never
      },
      rename,
      rm: (p) => rm(p, {force: true}),
      syncDirectory: async () => {},
    }
    const {journal} = await open(path, identity, 'boot-a', io)
    // The first write is in the journal as it is first written; the next is an append.
    journal.recordWritten(0, 10)
    await journal.flushed()
    journal.recordWritten(10, 20)
    await assert.rejects(journal.flushed(), /ENOSPC/)
    assert.throws(() => journal.recordWritten(20, 30), /ENOSPC/)
    await assert.rejects(journal.checkpoint(async () => {}), /ENOSPC/)
    await journal.remove()
  })

  it('a rewrite that fails on a full disk keeps the journal it had and leaves no temporary file', async () => {
    const path = fresh()
    let full = false
    const io: JournalIo = {
      open: async (p, flags) => {
        const h = await openFile(p, flags)
        const fail = async () => Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), {code: 'ENOSPC'}))
        return {write: full && flags === 'w' ? fail : h.write.bind(h), close: h.close.bind(h), sync: h.sync.bind(h)} as never
      },
      rename,
      rm: (p) => rm(p, {force: true}),
      syncDirectory: async () => {},
    }
    const {journal} = await open(path, identity, 'boot-a', io)
    journal.recordWritten(0, 100)
    await journal.checkpoint(async () => {})
    const before = readFileSync(path, 'utf8')
    full = true
    journal.recordWritten(100, 200)
    await assert.rejects(journal.checkpoint(async () => {}), /ENOSPC/)
    await journal.close()
    assert.equal(readFileSync(path, 'utf8').startsWith(before), true, 'the journal kept what it had')
    assert.deepEqual(readdirSync(dirname(path)), [basename(path)], 'no .tmp beside the journal')
    const again = await open(path, identity, 'boot-a')
    const kept = again.written.toArray()
    assert.equal(kept[0].start, 0)
    assert.ok(kept[0].end >= 100, 'the checkpointed range is still known after the failed rewrite')
    await again.journal.close()
  })
})

describe('PrefixHasher', () => {
  it('fails with a clear message when the worker cannot start, instead of never settling', async () => {
    const failures: Error[] = []
    const hasher = new PrefixHasher(join(tempDir('hash'), 'missing.part'), (e) => failures.push(e))
    await assert.rejects(hasher.finish(10), /hashing failed: .*ENOENT/)
    assert.equal(failures.length, 1)
  })

  it('keeps an error the worker reports before finish, and finish rejects with it', async () => {
    const path = join(tempDir('hash'), 'short.part')
    writeFileSync(path, Buffer.alloc(10))
    let told!: (e: Error) => void
    const failed = new Promise<Error>((resolve) => (told = resolve))
    const hasher = new PrefixHasher(path, (e) => told(e))
    // The pull believes 100 bytes are on disk; the file has 10.
    hasher.extend(100)
    assert.match((await failed).message, /part file ended at 10 bytes, expected 100/)
    await assert.rejects(hasher.finish(100), /part file ended at 10 bytes/)
  })
})

describe('InlineHasher (small files, no worker)', () => {
  it('hashes the complete part file', async () => {
    const path = join(tempDir('hash'), 'small.part')
    const content = Buffer.alloc(2.5 * 1024 * 1024 + 3, 'ab')
    writeFileSync(path, content)
    assert.equal(await new InlineHasher(path).finish(content.length), createHash('sha256').update(content).digest('hex'))
    const empty = join(tempDir('hash'), 'empty.part')
    writeFileSync(empty, '')
    assert.equal(await new InlineHasher(empty).finish(0), createHash('sha256').digest('hex'))
  })

  it('rejects a part file shorter than what the pull wrote, as the worker does', async () => {
    const path = join(tempDir('hash'), 'short.part')
    writeFileSync(path, Buffer.alloc(10))
    await assert.rejects(new InlineHasher(path).finish(100), /hashing failed: part file ended at 10 bytes, expected 100/)
  })
})

describe("another client's partial download (adopt.ts)", () => {
  const appended = (path: string) => ({path, kind: 'appended' as const})
  const held = async (path: string, part: string, size: number) => {
    const r = await adoptLeftover(appended(path), part, size)
    return {bytes: r.ranges.total, why: r.why}
  }

  it("huggingface_hub's: moved in when it is a start of the file, flushed; left alone when too long, sparse, or open in another process", async () => {
    const d = tempDir('adopt')
    const from = join(d, 'blob.incomplete')
    const part = join(d, 'blob.part')
    writeFileSync(from, Buffer.alloc(300_000, 7))
    assert.deepEqual(await held(from, part, 1_000_000), {bytes: 300_000, why: undefined})
    assert.ok(!existsSync(from) && readFileSync(part).length === 300_000)
    // As long as the file: not a partial download.
    writeFileSync(from, Buffer.alloc(1000, 7))
    assert.match((await held(from, join(d, 'b.part'), 1000)).why ?? '', /not shorter than the file/)
    // Holes: written out of order.
    const sparse = await openFile(from, 'w')
    await sparse.write(Buffer.from('end'), 0, 3, 10_000_000)
    await sparse.close()
    assert.match((await held(from, join(d, 'b.part'), 20_000_000)).why ?? '', /has holes/)
    // Open in a running process: that download is still going.
    writeFileSync(from, Buffer.alloc(1000, 7))
    const holder = spawn('sleep', ['30'], {stdio: [openSync(from, 'r'), 'ignore', 'ignore']})
    try {
      assert.equal(await openedElsewhere(from), holder.pid)
      assert.equal(await openedElsewhere(relative(process.cwd(), from)), holder.pid, 'a relative path too (HF_HOME=./hf)')
      assert.match((await held(from, join(d, 'b.part'), 5000)).why ?? '', new RegExp(`open in process ${holder.pid}: that download is still running`))
      assert.ok(existsSync(from))
    } finally {
      holder.kill()
    }
    assert.deepEqual(await held(join(d, 'none'), join(d, 'b.part'), 5000), {bytes: 0, why: undefined}, 'nothing there: nothing said')
  })

  /** Ollama's partial download of a `size`-byte blob, as server/download.go leaves it. */
  const ollamaLeftover = async (d: string, size: number, parts: OllamaPart[]) => ({path: await plantOllamaPartial(join(d, 'sha256-ab'), Buffer.alloc(size, 9), parts), kind: 'ollama' as const})

  it("Ollama's: the parts its records call written, moved in with the records gone; the first request goes to the first hole", async () => {
    const d = tempDir('adopt-ollama')
    const size = 3_000_000
    const leftover = await ollamaLeftover(d, size, [
      {Offset: 0, Size: 1_000_000, Completed: 1_000_000},
      {Offset: 1_000_000, Size: 1_000_000, Completed: 250_000},
      {Offset: 2_000_000, Size: 1_000_000, Completed: 0},
    ])
    const dest = {partPath: join(d, 'mine.part'), journalPath: join(d, 'mine.part.journal')}
    assert.deepEqual(adoptedHole(dest, {...leftover, size}), {start: 1_250_000, end: 3_000_000})
    const taken = await adoptLeftover(leftover, dest.partPath, size)
    assert.equal(taken.why, undefined)
    assert.deepEqual(taken.ranges.toArray(), [{start: 0, end: 1_250_000}])
    assert.deepEqual(readdirSync(d).sort(), ['mine.part'], "Ollama's file moved in, its records gone")
    // Parts done out of order: each one's written bytes, holes between.
    const e = tempDir('adopt-ollama')
    const gaps = await ollamaLeftover(e, size, [
      {Offset: 0, Size: 1_000_000, Completed: 100_000},
      {Offset: 1_000_000, Size: 1_000_000, Completed: 1_000_000},
      {Offset: 2_000_000, Size: 1_000_000, Completed: 500_000},
    ])
    assert.deepEqual(judgeLeftover(gaps, size).ranges.toArray(), [{start: 0, end: 100_000}, {start: 1_000_000, end: 2_500_000}])
    assert.deepEqual(adoptedHole({partPath: join(e, 'x'), journalPath: join(e, 'y')}, {...gaps, size}), {start: 100_000, end: 1_000_000})
  })

  it("Ollama's: left alone when its records are not this file's, cannot be read, or claim bytes the file lacks", async () => {
    const refused = async (size: number, parts: OllamaPart[], edit?: (path: string) => unknown) => {
      const d = tempDir('adopt-ollama')
      const leftover = await ollamaLeftover(d, size, parts)
      await edit?.(leftover.path)
      const judged = judgeLeftover(leftover, size)
      assert.equal(judged.ranges.total, 0)
      return judged.why ?? ''
    }
    const two = [{Offset: 0, Size: 500_000, Completed: 500_000}, {Offset: 500_000, Size: 500_000, Completed: 0}]
    assert.match(await refused(2_000_000, two), /its parts add up to 1000000 bytes, not the file's 2000000, so they are not this file's download/)
    assert.match(await refused(1_000_000, [two[0], {Offset: 400_000, Size: 600_000, Completed: 0}]), /leave a gap or overlap at byte 500000/)
    assert.match(await refused(1_000_000, two, (p) => writeFileSync(`${p}-1`, 'not json')), /its part record sha256-ab-partial-1 cannot be read/)
    assert.match(await refused(1_000_000, two, (p) => writeFileSync(`${p}-1`, JSON.stringify({N: 1, Offset: 500_000, Size: 500_000, Completed: 600_000}))), /is not one Ollama writes/)
    // The records say written, the file has holes there (recreated, or punched).
    const emptied = async (p: string) => {
      writeFileSync(p, '')
      const f = await openFile(p, 'r+')
      await f.truncate(1_000_000)
      await f.close()
    }
    assert.match(await refused(1_000_000, two, emptied), /fewer than its records claim/)
    // No records: nothing to go by, nothing said.
    const d = tempDir('adopt-ollama')
    writeFileSync(join(d, 'sha256-ab-partial'), Buffer.alloc(1000))
    assert.deepEqual(judgeLeftover({path: join(d, 'sha256-ab-partial'), kind: 'ollama'}, 1000), {ranges: new RangeSet()})
  })

  it("aria2c's: the pieces its control file calls finished, moved in with the control file gone", async () => {
    const d = tempDir('adopt-aria2')
    const MiB = 1024 * 1024
    const total = 3.5 * MiB
    const path = join(d, 'model.bin')
    // As aria2c allocates it: the full size at once.
    writeFileSync(path, Buffer.alloc(total, 5))
    writeFileSync(`${path}.aria2`, aria2Control(total, MiB, [0, 2, 3]))
    const leftover = aria2Beside(path)!
    assert.deepEqual(leftover, {path, kind: 'aria2'})
    const judged = judgeLeftover(leftover, undefined)
    assert.deepEqual([judged.ranges.toArray(), judged.size], [[{start: 0, end: MiB}, {start: 2 * MiB, end: total}], total], 'the last piece is the short one')
    const dest = {partPath: join(d, 'model.bin.part'), journalPath: join(d, 'model.bin.part.journal')}
    assert.deepEqual(adoptedHole(dest, leftover), {start: MiB, end: 2 * MiB}, 'its size from the control file, before the server says it')
    const taken = await adoptLeftover(leftover, dest.partPath, total)
    assert.deepEqual([taken.why, taken.ranges.total], [undefined, 2.5 * MiB])
    assert.deepEqual(readdirSync(d), ['model.bin.part'], 'the file moved, its control file gone')
    // Not this file, an old format, a torrent, an unreadable one: left alone, and said why.
    const why = (control: Buffer, size: number | undefined = total) => {
      writeFileSync(path, Buffer.alloc(total, 5))
      writeFileSync(`${path}.aria2`, control)
      return judgeLeftover({path, kind: 'aria2'}, size).why ?? ''
    }
    assert.match(why(aria2Control(total, MiB, [0]), 4 * MiB), /its control file is for a file of 3670016 bytes, not this one's 4194304/)
    assert.match(why(aria2Control(total, MiB, [0], {version: 0})), /aria2c's version 0 format, which mtune does not read/)
    assert.match(why(aria2Control(total, MiB, [0], {infoHash: Buffer.alloc(20, 1)})), /a BitTorrent download's/)
    assert.match(why(Buffer.from('garbage')), /is not one aria2c writes/)
    // Nothing finished: nothing kept, but the control file goes with the file all the same.
    writeFileSync(path, Buffer.alloc(total, 5))
    writeFileSync(`${path}.aria2`, aria2Control(total, MiB, []))
    const none = await adoptLeftover({path, kind: 'aria2'}, join(d, 'other.part'), total)
    assert.deepEqual([none.why, none.ranges.total, existsSync(`${path}.aria2`)], [undefined, 0, false])
  })

  it('a journal seeded with it names its bytes durable', async () => {
    const path = fresh()
    const seeded = Journal.seeded(path, identity, 'boot-a', RangeSet.from([{start: 0, end: 400}, {start: 600, end: 700}]))
    await seeded.journal.begin()
    await seeded.journal.close()
    const again = Journal.load(path, identity, 'boot-b')
    assert.deepEqual(again.written.toArray(), [{start: 0, end: 400}, {start: 600, end: 700}], 'durable: trusted after a reboot too')
  })
})
