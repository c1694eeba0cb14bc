import assert from 'node:assert/strict'
import {existsSync, readFileSync, utimesSync, writeFileSync} from 'node:fs'
import {hostname} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {HolderProgress} from '../src/lib/transfer/holder-progress.js'
import {Journal} from '../src/lib/transfer/journal.js'
import {PullLock, sourceId, type LockHolder} from '../src/lib/transfer/pull-lock.js'
import type {Progress} from '../src/lib/transfer/pull-types.js'
import {tempDir} from './support/temp.js'

const part = () => join(tempDir('lock'), 'model.bin.part')
const holder = (over: Partial<LockHolder> = {}): LockHolder => ({pid: 4242, host: hostname(), bootId: 'boot-a', pidns: 'pid:[1]', token: 'theirs', ...over})
const plant = (partPath: string, h: LockHolder) => writeFileSync(`${partPath}.lock`, JSON.stringify(h))

describe('PullLock', () => {
  it('makes a second pull of the same file wait until the first releases it', async () => {
    const path = part()
    const first = await PullLock.acquire(path, {bootId: 'boot-a'})
    let waitedFor: LockHolder | undefined
    let said!: () => void
    const waiting = new Promise<void>((resolve) => (said = resolve))
    const second = PullLock.acquire(path, {
      bootId: 'boot-a',
      onWait: (h) => {
        waitedFor = h
        said()
      },
    })
    await waiting
    assert.equal(waitedFor?.pid, process.pid, 'the waiter is told who holds the file')
    first.release()
    const held = await second
    assert.equal(JSON.parse(readFileSync(`${path}.lock`, 'utf8')).pid, process.pid)
    held.release()
    assert.ok(!existsSync(`${path}.lock`), 'released: no lock file left')
  })

  it('tells a waiter whether the pull it waited on fetched the same source, without writing the URL', async () => {
    const path = part()
    const url = 'https://cdn.example/model.bin?token=secret'
    const first = await PullLock.acquire(path, {source: sourceId(url)})
    assert.ok(!readFileSync(`${path}.lock`, 'utf8').includes('secret'), 'a digest of the URL, not the URL')
    const same = PullLock.acquire(path, {source: sourceId(url)})
    const other = PullLock.acquire(`${path}.x`, {source: sourceId(url)})
    const elsewhere = await other
    assert.equal(elsewhere.waitedOnSame, false, 'took it at once')
    elsewhere.release()
    setTimeout(() => first.release(), 300)
    const second = await same
    assert.equal(second.waitedOnSame, true)
    setTimeout(() => second.release(), 300)
    const third = await PullLock.acquire(path, {source: sourceId(`${url}&other`)})
    assert.equal(third.waitedOnSame, false, 'waited on another URL')
    third.release()
  })

  it('tells a waiter the sha256 the pull it waited on checks the file against, and only for the same source', async () => {
    const path = part()
    const source = sourceId('https://cdn.example/model.bin')
    const digest = 'ab'.repeat(32)
    for (const [holding, waiting, want] of [
      [{source, sha256: digest}, {source, sha256: digest}, digest],
      [{source, sha256: digest}, {source}, digest],
      [{source}, {source, sha256: digest}, undefined],
      [{source: sourceId('https://other.example/model.bin'), sha256: digest}, {source, sha256: digest}, undefined],
    ] as const) {
      const first = await PullLock.acquire(path, holding)
      const second = PullLock.acquire(path, waiting)
      setTimeout(() => first.release(), 300)
      const held = await second
      assert.equal(held.checkedBy, want, JSON.stringify({holding, waiting}))
      held.release()
    }
  })

  it('takes over at once from a holder of this host that no longer runs, or ran before a reboot', async () => {
    for (const [why, h, alive] of [
      ['dead pid', holder(), false],
      ['another boot', holder({bootId: 'boot-b'}), true],
    ] as const) {
      const path = part()
      plant(path, h)
      const lock = await PullLock.acquire(path, {bootId: 'boot-a', pidns: 'pid:[1]', alive: () => alive, onWait: () => assert.fail(`waited on a ${why}`)})
      assert.notEqual(JSON.parse(readFileSync(`${path}.lock`, 'utf8')).token, 'theirs', why)
      lock.release()
    }
  })

  it('waits for a live holder, and for one whose pid it cannot look up until it stops refreshing the lock', async () => {
    const cases: Array<[LockHolder, boolean]> = [
      [holder(), true],
      [holder({host: 'other-node', pid: process.pid}), false],
      // Another container with host networking: our host name and boot, its own pids.
      [holder({pidns: 'pid:[2]'}), false],
    ]
    for (const [h, alive] of cases) {
      const path = part()
      plant(path, h)
      const abort = new AbortController()
      const attempt = PullLock.acquire(path, {bootId: 'boot-a', pidns: 'pid:[1]', alive: () => alive, signal: abort.signal, onWait: () => abort.abort()})
      await assert.rejects(attempt, {name: 'AbortError'})
      assert.equal(JSON.parse(readFileSync(`${path}.lock`, 'utf8')).token, 'theirs', 'the holder keeps it')
    }
    const path = part()
    plant(path, holder({host: 'other-node'}))
    const old = new Date(Date.now() - 60_000)
    utimesSync(`${path}.lock`, old, old)
    const lock = await PullLock.acquire(path, {bootId: 'boot-a', alive: () => true, onWait: () => assert.fail('waited on a lock not refreshed for a minute')})
    lock.release()
  })

  it('never removes a lock that another pull took over in the meantime', async () => {
    const path = part()
    const lock = await PullLock.acquire(path, {bootId: 'boot-a'})
    plant(path, holder({token: 'successor'}))
    lock.release()
    assert.equal(JSON.parse(readFileSync(`${path}.lock`, 'utf8')).token, 'successor')
  })
})

describe('the progress of the pull waited on', () => {
  it('is read from its journal once a second, with the rate its bytes arrive at, and survives its starting over', async () => {
    const path = join(tempDir('holder'), 'model.bin.part.journal')
    const shown: Progress[] = []
    const watch = new HolderProgress(path, 'boot-a', (p) => shown.push(p))
    watch.look(0)
    assert.equal(shown.length, 0, 'no journal yet: nothing to show')
    const {journal} = Journal.load(path, {url: 'http://h/model.bin', size: 1000, ranges: true}, 'boot-a')
    await journal.begin()
    journal.recordWritten(0, 100)
    await journal.flushed()
    watch.look(1_000)
    watch.look(1_500)
    assert.equal(shown.length, 1, 'once a second')
    assert.deepEqual([shown[0].size, shown[0].done, shown[0].fetched, shown[0].connections], [1000, 100, 0, 0])
    journal.recordWritten(100, 600)
    await journal.flushed()
    watch.look(2_000)
    assert.deepEqual([shown[1].done, shown[1].fetched, shown[1].rate], [600, 500, 500], '500 bytes in a second')
    assert.equal(shown[1].etaSeconds, 0.8)
    await journal.remove()
    // The holder found the file changed and started over: what it writes from there counts on.
    const again = Journal.load(path, {url: 'http://h/model.bin', size: 1000, ranges: true}, 'boot-a').journal
    await again.begin()
    again.recordWritten(0, 50)
    await again.flushed()
    watch.look(3_000)
    watch.look(4_000)
    assert.deepEqual([shown[2].done, shown[2].fetched, shown[3].fetched], [50, 500, 500])
    again.recordWritten(50, 250)
    await again.flushed()
    watch.look(5_000)
    assert.equal(shown[4].fetched, 700)
    await again.close()
  })
})
