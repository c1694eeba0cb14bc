import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {closeSync, openSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {readAhead, readBlocks} from '../src/lib/read-ahead.js'
import {tempDir} from './support/temp.js'

describe('read-ahead: a file range block by block', () => {
  const dir = tempDir('read-ahead')
  const content = randomBytes(10_000)
  const path = join(dir, 'f')
  writeFileSync(path, content)
  const fd = openSync(path, 'r')
  after(() => {
    closeSync(fd)
    rmSync(dir, {recursive: true, force: true})
  })
  const buffers = (): [Buffer, Buffer] => [Buffer.alloc(4096), Buffer.alloc(4096)]

  it('yields exactly the range, across block boundaries, each block intact when used', async () => {
    for (const [from, to] of [[0, 10_000], [100, 8292], [4096, 8192], [5, 6], [7, 7]]) {
      const ahead: Buffer[] = []
      // Copied as each block comes: the one after it is being read into the other buffer.
      for await (const block of readAhead(fd, from, to, buffers())) ahead.push(Buffer.from(block))
      assert.ok(Buffer.concat(ahead).equals(content.subarray(from, to)), `readAhead ${from}-${to}`)
      assert.ok(ahead.every((b) => b.length <= 4096))
      const inline: Buffer[] = []
      for (const block of readBlocks(fd, from, to, Buffer.alloc(4096))) inline.push(Buffer.from(block))
      assert.ok(Buffer.concat(inline).equals(content.subarray(from, to)), `readBlocks ${from}-${to}`)
    }
  })

  it('stops where the file ends, for the caller to notice the shortfall', async () => {
    let got = 0
    for await (const block of readAhead(fd, 9000, 20_000, buffers())) got += block.length
    assert.equal(got, 1000)
    assert.equal([...readBlocks(fd, 9000, 20_000, Buffer.alloc(4096))].reduce((n, b) => n + b.length, 0), 1000)
  })
})
