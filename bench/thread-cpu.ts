import {spawn} from 'node:child_process'
import {readdirSync, readFileSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

/**
 * CPU time per thread of one pull: `node dist/bench/thread-cpu.js URL [pull flags...]`.
 *
 * GNU time gives a process's CPU as one figure; which thread spends it says what a machine with
 * more cores would do with the pull (docs/BENCHMARKS.md, "per thread"). Linux only: the threads'
 * utime and stime are read from /proc/PID/task every 20 ms, so a thread is known by its last
 * reading before it ended (up to 20 ms of it lost). Node names every thread "node", so they are
 * listed by thread id, which is their order of creation: the main thread, V8's platform threads,
 * libuv's pool (the journal's appends, and the file writes when write-gate.ts sends them there:
 * system time only), then worker threads as the pull starts them
 * (fetch threads, then the hash worker).
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const bin = join(root, 'bin', 'run.js')
const ticks = 100 // USER_HZ: the unit of /proc's utime and stime on Linux

interface ThreadCpu {
  user: number
  system: number
}

function readThreads(pid: number, into: Map<number, ThreadCpu>): boolean {
  let tids: string[]
  try {
    tids = readdirSync(`/proc/${pid}/task`)
  } catch {
    return false
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      // Fields after the command name, which may hold spaces: utime and stime are the 12th and 13th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      into.set(Number(tid), {user: Number(fields[11]) / ticks, system: Number(fields[12]) / ticks})
    } catch {
      // The thread ended between the listing and the read: its previous reading stands.
    }
  }
  return true
}

async function main(): Promise<void> {
  const [url, ...flags] = process.argv.slice(2)
  if (!url) {
    console.error('usage: node dist/bench/thread-cpu.js URL [pull flags...]')
    process.exit(2)
  }
  const dir = mkdtempSync(join(tmpdir(), 'mtune-thread-cpu-'))
  const started = performance.now()
  // bin/run.js execs node with its V8 flags, so the child's pid is the pull's.
  const child = spawn(bin, ['pull', url, '-o', join(dir, 'file'), '--json', ...flags], {stdio: ['ignore', 'ignore', 'inherit']})
  const threads = new Map<number, ThreadCpu>()
  const exited = new Promise<number>((resolve) => child.once('close', (code) => resolve(code ?? 1)))
  let done = false
  void exited.then(() => (done = true))
  while (!done && readThreads(child.pid!, threads)) await new Promise((resolve) => setTimeout(resolve, 20))
  const code = await exited
  const wall = (performance.now() - started) / 1000
  rmSync(dir, {recursive: true, force: true})
  let total = 0
  for (const [tid, t] of [...threads].sort(([a], [b]) => a - b)) {
    total += t.user + t.system
    if (t.user + t.system >= 0.01) console.log(`${tid}${tid === child.pid ? ' (main)' : ''}\tuser ${t.user.toFixed(2)}\tsys ${t.system.toFixed(2)}`)
  }
  console.log(`total ${total.toFixed(2)} CPU s, wall ${wall.toFixed(2)} s, exit ${code}`)
  process.exitCode = code
}

await main()
