import {createHash} from 'node:crypto'
import {closeSync, fstatSync, openSync} from 'node:fs'
import {parentPort} from 'node:worker_threads'
import {readAhead, readBlocks} from '../read-ahead.js'

/**
 * One file at a time, read sequentially in large blocks into reused buffers (the next one read
 * while this one is hashed, where a core is free for it: read-ahead.ts) and hashed with OpenSSL
 * (SHA extensions where the CPU has them). `git` hashes as git does a blob:
 * sha1("blob <size>\0" + content), for small Hugging Face files.
 */
const BLOCK = 8 * 1024 * 1024
const REPORT = 64 * 1024 * 1024
const buffers: [Buffer, Buffer] = [Buffer.allocUnsafe(BLOCK), Buffer.allocUnsafe(BLOCK)]

parentPort!.on('message', async (job: {id: number; path: string; algorithm: 'sha256' | 'git-sha1'; readAhead: boolean}) => {
  let fd: number | undefined
  try {
    fd = openSync(job.path, 'r')
    const size = fstatSync(fd).size
    const hash = job.algorithm === 'git-sha1' ? createHash('sha1').update(`blob ${size}\0`) : createHash('sha256')
    let done = 0
    let reported = 0
    for await (const block of job.readAhead ? readAhead(fd, 0, size, buffers) : readBlocks(fd, 0, size, buffers[0])) {
      hash.update(block)
      done += block.length
      if (done - reported >= REPORT) {
        parentPort!.postMessage({id: job.id, progress: done - reported})
        reported = done
      }
    }
    parentPort!.postMessage({id: job.id, progress: done - reported})
    parentPort!.postMessage({id: job.id, digest: hash.digest('hex'), size: done})
  } catch (error) {
    parentPort!.postMessage({id: job.id, error: (error as NodeJS.ErrnoException).code ?? (error as Error).message})
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
})
