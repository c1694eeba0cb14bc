import {createHash} from 'node:crypto'
import {closeSync, openSync} from 'node:fs'
import {parentPort, workerData} from 'node:worker_threads'
import {readBlocks} from '../read-ahead.js'

/**
 * Hashes the part file from byte 0 up to the contiguous prefix already written, off the main
 * thread, so the digest is ready moments after the last byte arrives.
 */
const {path} = workerData as {path: string}
const hash = createHash('sha256')
const buffer = Buffer.allocUnsafe(1024 * 1024)
const fd = openSync(path, 'r')
let hashed = 0
let target = 0
let finishing = false

function catchUp(): void {
  for (const block of readBlocks(fd, hashed, target, buffer)) {
    hash.update(block)
    hashed += block.length
  }
  if (hashed < target) throw new Error(`part file ended at ${hashed} bytes, expected ${target}`)
}

parentPort!.on('message', (message: {upTo: number; finish?: boolean}) => {
  try {
    target = Math.max(target, message.upTo)
    finishing ||= Boolean(message.finish)
    catchUp()
    if (finishing) {
      closeSync(fd)
      parentPort!.postMessage({digest: hash.digest('hex'), hashed})
    }
  } catch (error) {
    parentPort!.postMessage({error: (error as Error).message})
  }
})
