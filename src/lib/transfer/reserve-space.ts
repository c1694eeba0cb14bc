import {execFile} from 'node:child_process'
import {formatBytes} from '../units.js'

/**
 * Files from this size get their blocks reserved before the first write: below it a pull is
 * over in moments, so there is little time for the disk to fill behind it, and a model's
 * dozens of small files would each cost a process.
 */
export const RESERVE_FROM = 32 * 1024 * 1024

export type Reserved = {reserved: true} | {reserved: false; why: string}

/**
 * Pure: whether a fresh file of `size` gets its blocks reserved, with `free` bytes free where it
 * goes (undefined: statfs could not say). Only where it takes a good part of that, a quarter or
 * more: there another writer could fill the disk under the pull. Not below: reserving costs (the
 * capped scenario of npm run bench, 512 MiB on a disk with 80 GB free, went from 150.5-150.8
 * MiB/s to 133.8-151.1 with it, in 6 and 9 runs: whether the process forked as the pull starts
 * or ext4's converting its unwritten extents, not told apart), and buys nothing on a disk with
 * room to spare. `why`: for --debug, where a big file is not reserved.
 */
export function reserveFor(size: number, free: number | undefined): {reserve: boolean; why?: string} {
  if (size < RESERVE_FROM) return {reserve: false}
  if (free === undefined || size * 4 >= free) return {reserve: true}
  return {reserve: false, why: `${formatBytes(size)} is under a quarter of the ${formatBytes(free)} free`}
}

/** What fallocate(1) said: its exit status and standard error, or that it could not be run. */
export type FallocateRun = (args: string[]) => Promise<{exitCode: number; stderr: string} | {missing: true}>

/**
 * Reserve the blocks of a fresh part file up front, as aria2c's --file-allocation=falloc does.
 * The free-space check before a pull is only a snapshot: a second pull to the same disk, a
 * training job's checkpoints or logs can take the room while a 500 GB file arrives, and the
 * pull then fails at 97%. Reserved, the disk says no at the start, and what the part file
 * holds is the pull's. Node has no fallocate(2), so util-linux's command does it (no native
 * addon to build); where it or the filesystem cannot (macOS, NFSv3, FUSE), the file stays
 * sparse, as before. Mode 0 only allocates holes: bytes already written are kept.
 *
 * Rejects with an error whose code is ENOSPC when the disk has no room for the file. The caller
 * must then give the blocks back (a fresh file: remove it): the kernel keeps what it allocated
 * before it ran out, which would leave the disk full for everyone else.
 */
export async function reserveSpace(path: string, size: number, run: FallocateRun = fallocateCommand): Promise<Reserved> {
  const outcome = await run(['--length', String(size), path])
  if ('missing' in outcome) return {reserved: false, why: 'the fallocate command (util-linux) is not installed'}
  if (outcome.exitCode === 0) return {reserved: true}
  const said = outcome.stderr.trim().split('\n').at(-1)?.replace(/^fallocate:\s*/, '') ?? ''
  if (/no space left|quota exceeded/i.test(said)) {
    throw Object.assign(new Error(`ENOSPC: no space left on device, fallocate '${path}'`), {code: 'ENOSPC', syscall: 'fallocate', path})
  }
  return {reserved: false, why: said || `fallocate exited with ${outcome.exitCode}`}
}

/** fallocate(1) in the C locale, so that its errors can be read; a minute at most (a stuck NFS). */
const fallocateCommand: FallocateRun = (args) =>
  new Promise((resolve) => {
    execFile('fallocate', args, {env: {...process.env, LC_ALL: 'C'}, timeout: 60_000}, (error, _stdout, stderr) => {
      const failed = error as (Error & {code?: string | number; killed?: boolean}) | null
      if (failed?.code === 'ENOENT' || failed?.code === 'EACCES') resolve({missing: true})
      else if (failed?.killed) resolve({exitCode: -1, stderr: 'fallocate took more than a minute'})
      else resolve({exitCode: failed ? (typeof failed.code === 'number' ? failed.code : 1) : 0, stderr: String(stderr)})
    })
  })
