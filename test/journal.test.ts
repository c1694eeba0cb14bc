import assert from 'node:assert/strict'
import {appendFileSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {Journal, type FileIdentity, type Loaded} from '../src/lib/transfer/journal.js'

const identity: FileIdentity = {url: 'http://h/f', size: 1000, etag: '"e1"', lastModified: 'Thu, 01 Jan 2026 00:00:00 GMT', ranges: true}
/** As a pull does it: load, then begin before the first write. */
function open(path: string, id: FileIdentity, bootId: string): Loaded {
  const loaded = Journal.load(path, id, bootId)
  loaded.journal.begin()
  return loaded
}
const fresh = () => join(mkdtempSync(join(tmpdir(), 'mtune-journal-')), 'f.part.journal')

describe('Journal', () => {
  it('after SIGKILL (same boot) trusts every range written, synced or not', async () => {
    const path = fresh()
    const {journal} = open(path, identity, 'boot-a')
    journal.recordWritten(0, 100)
    await journal.checkpoint(async () => {})
    journal.recordWritten(500, 600)
    // No close, no checkpoint: the process died here.
    const again = open(path, identity, 'boot-a')
    assert.equal(again.discarded, undefined)
    assert.deepEqual(again.written.toArray(), [
      {start: 0, end: 100},
      {start: 500, end: 600},
    ])
    assert.deepEqual(Journal.firstMissing(path, 'boot-a'), {start: 100, end: 500})
  })

  it('after a power loss (new boot) trusts only what a checkpoint made durable', async () => {
    const path = fresh()
    const {journal} = open(path, identity, 'boot-a')
    journal.recordWritten(0, 100)
    await journal.checkpoint(async () => {})
    journal.recordWritten(100, 900)
    const after = open(path, identity, 'boot-b')
    assert.deepEqual(after.written.toArray(), [{start: 0, end: 100}])
  })

  it('syncs the data before it calls ranges durable', async () => {
    const path = fresh()
    const {journal} = open(path, identity, 'boot-a')
    journal.recordWritten(0, 10)
    const order: string[] = []
    await journal.checkpoint(async () => {
      order.push('datasync')
      assert.doesNotMatch(readFileSync(path, 'utf8'), /^D /m, 'no D line before the data is synced')
    })
    order.push('done')
    assert.match(readFileSync(path, 'utf8'), /^D 0 10$/m)
    assert.deepEqual(order, ['datasync', 'done'])
  })

  it('ignores a torn last line and ranges beyond the file', () => {
    const path = fresh()
    const {journal} = open(path, identity, 'boot-a')
    journal.recordWritten(0, 50)
    journal.close()
    appendFileSync(path, 'W 50 2000\nW 60 7')
    const again = open(path, identity, 'boot-a')
    assert.deepEqual(again.written.toArray(), [{start: 0, end: 50}])
  })

  it('throws the partial download away when the file changed, and says why', () => {
    const path = fresh()
    open(path, identity, 'boot-a').journal.recordWritten(0, 100)
    const changed = open(path, {...identity, etag: '"e2"'}, 'boot-a')
    assert.match(changed.discarded!, /ETag changed \("e1" -> "e2"\)/)
    assert.equal(changed.written.total, 0)
    const resized = open(path, {...identity, size: 2000}, 'boot-a')
    assert.match(resized.discarded!, /size changed/)
  })

  it('treats an unreadable journal as no journal', () => {
    const path = fresh()
    writeFileSync(path, 'garbage')
    assert.equal(Journal.firstMissing(path, 'boot-a'), undefined)
    const loaded = open(path, identity, 'boot-a')
    assert.match(loaded.discarded!, /unreadable/)
  })
})
