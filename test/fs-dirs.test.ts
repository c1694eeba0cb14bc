import assert from 'node:assert/strict'
import {statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {MtuneError} from '../src/lib/errors.js'
import {dirError, makeDirs, makeDirsSync} from '../src/lib/fs-dirs.js'
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
})
