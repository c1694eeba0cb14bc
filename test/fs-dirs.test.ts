import assert from 'node:assert/strict'
import {mkdirSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {open} from 'node:fs/promises'
import {MtuneError} from '../src/lib/errors.js'
import {dirError, fsFailure, makeDirs, makeDirsSync} from '../src/lib/fs-dirs.js'
import {spaceShortfall} from '../src/lib/sources/run-plan.js'
import {downloadedOnDisk, heldOnDisk, stillToWrite} from '../src/lib/sources/held.js'
import {Journal, currentBootId} from '../src/lib/transfer/journal.js'
import type {PlannedFile} from '../src/lib/sources/plan.js'
import {parseUrlList, urlListPlan} from '../src/lib/sources/url-list.js'
import {tempDir} from './support/temp.js'

describe('makeDirs: mkdir -p that ends', () => {
  it('makes every missing level, and two at once both succeed', async () => {
    const root = tempDir('dirs')
    const deep = join(root, 'a', 'b', 'c')
    await Promise.all([makeDirs(deep), makeDirs(join(deep, 'd')), makeDirs(deep)])
    assert.ok(statSync(join(deep, 'd')).isDirectory())
    makeDirsSync(join(root, 'x', 'y'))
    assert.ok(statSync(join(root, 'x', 'y')).isDirectory())
    await makeDirs(deep)
  })

  it('fails, naming the directory, where Node\'s recursive mkdir would loop for ever (/proc)', async () => {
    await assert.rejects(makeDirs('/proc/mtune-no-such-dir/hub'), (e: NodeJS.ErrnoException) => e.code === 'ENOENT' && e.path === '/proc/mtune-no-such-dir')
    assert.throws(() => makeDirsSync('/proc/mtune-no-such-dir/hub'), (e: NodeJS.ErrnoException) => e.code === 'ENOENT')
    const file = join(tempDir('dirs'), 'file')
    writeFileSync(file, 'x')
    await assert.rejects(makeDirs(join(file, 'a', 'b')), (e: NodeJS.ErrnoException) => e.code === 'ENOTDIR' && e.path === file, 'a file in the way is named')
    assert.throws(() => makeDirsSync(join(file, 'a')), (e: NodeJS.ErrnoException) => e.code === 'ENOTDIR' && e.path === file)
    const line = dirError(Object.assign(new Error('EACCES'), {code: 'EACCES', path: '/srv/models'}), 'set OLLAMA_MODELS to a directory you can write')
    assert.ok(line instanceof MtuneError)
    assert.equal(line.exitCode, 5)
    assert.equal(line.message, 'cannot create /srv/models (permission denied): set OLLAMA_MODELS to a directory you can write')
  })
  it('says a full or read-only disk as one line and exit 5 wherever it is met, naming the file', () => {
    const err = (code: string, syscall: string, path?: string) => Object.assign(new Error(code), {code, syscall, ...(path ? {path} : {})})
    const full = fsFailure(err('ENOSPC', 'write', '/srv/cache/nginx.conf'))
    assert.deepEqual([full?.exitCode, full?.message], [5, 'cannot write /srv/cache/nginx.conf (the disk is full): free some space on that disk, or choose another place'])
    assert.match(fsFailure(err('EDQUOT', 'write'))?.message ?? '', /^cannot write to the disk \(the disk is full\)/)
    assert.match(fsFailure(err('EROFS', 'open', '/usr/x'))?.message ?? '', /a read-only filesystem\): choose a place on a writable filesystem$/)
    assert.equal(fsFailure(err('EACCES', 'connect')), undefined, 'not a disk')
    assert.equal(fsFailure(err('EPERM', 'kill')), undefined)
    assert.equal(fsFailure(new Error('boom')), undefined)
    // A model's missing bytes against the free space, before any file starts, with its layout's way elsewhere.
    const plan = {root: '/home/u/.cache/huggingface/hub/models--o--m', source: 'hf://o/m@main', layout: 'hf-cache' as const}
    assert.equal(spaceShortfall(plan, 10 * 1024 ** 3, 100 * 1024 ** 3), undefined)
    assert.equal(
      spaceShortfall(plan, 10 * 1024 ** 3, 4 * 1024 ** 3)?.message,
      'not enough space in /home/u/.cache/huggingface/hub/models--o--m for hf://o/m@main: 10.0 GiB still needed, 4.0 GiB free; free some space, or pull it onto another disk: HF_HUB_CACHE=DIR (or HF_HOME), or --local-dir DIR',
    )
    assert.match(spaceShortfall({...plan, layout: 'ollama'}, 10, 0)?.message ?? '', /OLLAMA_MODELS=DIR$/)
    assert.match(spaceShortfall({...plan, layout: 'directory'}, 10, 0)?.message ?? '', /another --local-dir$/)
  })

  it('counts what partial downloads hold, not their length: mtune\'s part file is sparse at the full size', async () => {
    const d = tempDir('held')
    const MiB = 1024 * 1024
    const file = (name: string, extra: Partial<PlannedFile> = {}): PlannedFile => ({name, url: 'http://h/' + name, size: 64 * MiB, dest: join(d, name), present: false, ...extra})
    // An interrupted pull: 64 MiB long, 2 MiB of it written.
    const part = await open(join(d, 'a.bin.part'), 'w')
    await part.truncate(64 * MiB)
    await part.write(Buffer.alloc(2 * MiB, 1), 0, 2 * MiB, 10 * MiB)
    await part.close()
    const a = file('a.bin')
    assert.ok(heldOnDisk(a) >= 2 * MiB && heldOnDisk(a) < 3 * MiB, `${heldOnDisk(a)} bytes held`)
    // huggingface_hub's .incomplete that a pull takes over: its bytes; one it would not: none.
    writeFileSync(join(d, 'b.incomplete'), Buffer.alloc(5 * MiB, 1))
    assert.equal(heldOnDisk(file('b.bin', {adopt: {path: join(d, 'b.incomplete'), kind: 'appended'}})), 5 * MiB)
    assert.equal(heldOnDisk(file('c.bin', {size: 4 * MiB, adopt: {path: join(d, 'b.incomplete'), kind: 'appended'}})), 0, 'longer than the file: not taken over')
    assert.equal(heldOnDisk(file('d.bin', {present: true})), 64 * MiB)
    assert.equal(heldOnDisk(file('e.bin')), 0)
    const left = stillToWrite([a, file('d.bin', {present: true}), file('e.bin')])
    assert.ok(left > 125 * MiB && left <= 126 * MiB, `${left} bytes still to write`)
  })

  it("says what a reserved part file's journal records as downloaded, while counting its blocks as held", async () => {
    const d = tempDir('held')
    const MiB = 1024 * 1024
    const f: PlannedFile = {name: 'a.bin', url: 'http://h/a.bin', size: 8 * MiB, dest: join(d, 'a.bin'), present: false}
    // Its first run reserved the whole file (written out here, as on a filesystem without fallocate) and got 3 MiB.
    writeFileSync(join(d, 'a.bin.part'), Buffer.alloc(8 * MiB))
    const {journal} = Journal.load(join(d, 'a.bin.part.journal'), {url: f.url, size: f.size, ranges: true}, currentBootId())
    await journal.begin()
    journal.recordWritten(0, 3 * MiB)
    await journal.checkpoint(async () => {})
    await journal.close()
    assert.equal(downloadedOnDisk(f), 3 * MiB, 'downloaded, as the journal says')
    assert.equal(heldOnDisk(f), 8 * MiB, 'held: nothing more to find on the disk')
    assert.equal(stillToWrite([f]), 0)
    assert.equal(downloadedOnDisk({...f, name: 'b.bin', dest: join(d, 'b.bin')}), 0, 'no part file, no journal')
  })

  it("a list's (pull -i) way elsewhere is its -o DIR/, not --local-dir", async () => {
    const d = tempDir('list-space')
    const list = await urlListPlan(parseUrlList('http://127.0.0.1:9/a.bin\n', 'urls.txt'), 'urls.txt', join(d, 'out'), false)
    assert.match(spaceShortfall(list, 10, 0)?.message ?? '', /for urls\.txt \(1 URL\): .*; free some space, or pull the list onto another disk: -o DIR\/$/)
    // A file already there stops a list without --force, but aria2c's partial download (its
    // control file beside it) is no file to keep or refuse: the pull takes it over.
    mkdirSync(join(d, 'out'))
    writeFileSync(join(d, 'out', 'a.bin'), 'aria2c')
    await assert.rejects(urlListPlan(parseUrlList('http://127.0.0.1:9/a.bin\n', 'urls.txt'), 'urls.txt', join(d, 'out'), false), /a\.bin already exists/)
    writeFileSync(join(d, 'out', 'a.bin.aria2'), '')
    const taken = await urlListPlan(parseUrlList('http://127.0.0.1:9/a.bin\n', 'urls.txt'), 'urls.txt', join(d, 'out'), false)
    assert.equal(taken.files[0]!.present, false)
  })
})
