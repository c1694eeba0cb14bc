import {spawn, spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {chmodSync, closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync} from 'node:fs'
import {availableParallelism, tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {findNginx} from '../src/lib/cache/nginx.js'
import {defaultThreads} from '../src/lib/transfer/thread-count.js'
import {freePort} from '../test/support/free-port.js'
import {makeContent, sha256} from '../test/support/mirror-server.js'

/**
 * The fat-pipe scenario: 2 GiB from a real nginx on loopback, over HTTP and over HTTPS (a
 * certificate made for the run, trusted through NODE_EXTRA_CA_CERTS, --ca-certificate and
 * --cacert), with no caps: the client's own cost per byte is the limit. mtune (sha256 always)
 * against aria2c -x16 -s16 -k1M (no checksum) and curl (one stream).
 */
const MiB = 1024 * 1024
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const bin = join(root, 'bin', 'run.js')

/** mtune with its default thread count, mtune with N fetch threads, or another tool. */
export type FatTool = 'mtune' | `mtune --threads ${number}` | 'mtune, undici client' | 'aria2c' | 'curl'
export interface FatMeasure {
  seconds: number
  cpu: number
  sys: number
  rssMB: number
  ok: boolean
}
export interface FatResult {
  sizeMiB: number
  runs: number
  cores: number
  defaultThreads: number
  /** CPU seconds sha256 alone takes per GiB on this machine (Node's OpenSSL, one core). */
  hashPerGiB: number
  /** CPU seconds per GiB of writing the file into the page cache alone, after the same pause as every run. */
  pageCachePerGiB: number[]
  rows: Array<{scheme: 'http' | 'https'; tool: FatTool; measures: FatMeasure[]}>
}

function timed(argv: string[], env: Record<string, string>): Promise<{seconds: number; cpu: number; sys: number; rssMB: number; code: number}> {
  const out = join(tmpdir(), `mtune-fat-time-${process.pid}`)
  return new Promise((resolve) => {
    const child = spawn('/usr/bin/time', ['-o', out, '-f', '%e %U %S %M', ...argv], {stdio: 'ignore', env: {...process.env, ...env}})
    child.once('close', (code) => {
      const [e, u, s, m] = readFileSync(out, 'utf8').trim().split('\n').pop()!.split(' ').map(Number)
      rmSync(out, {force: true})
      resolve({seconds: e, cpu: u + s, sys: s, rssMB: (m * 1024) / 1e6, code: code ?? 1})
    })
  })
}

export async function fatpipe(sizeMiB = 2048, runs = 3): Promise<FatResult | undefined> {
  const nginx = findNginx()
  if (!nginx) {
    console.log('nginx is not installed (apt-get install -y nginx): no fatpipe scenario')
    return undefined
  }
  const dir = mkdtempSync(join(tmpdir(), 'mtune-fatpipe-'))
  chmodSync(dir, 0o755)
  const content = makeContent(sizeMiB * MiB, 11)
  const digest = sha256(content)
  // In pieces: one write call takes at most 2 GiB - 1.
  const fd = openSync(join(dir, 'model.bin'), 'w')
  for (let at = 0; at < content.length; at += 256 * MiB) writeSync(fd, content, at, Math.min(256 * MiB, content.length - at))
  closeSync(fd)
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], {stdio: 'ignore'})
  if (made.status !== 0) throw new Error('openssl could not make a certificate')
  const http = await freePort()
  const https = await freePort()
  const user = process.getuid?.() === 0 ? 'user www-data;\n' : ''
  writeFileSync(
    join(dir, 'nginx.conf'),
    `${user}worker_processes 1;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log warn;\nevents { worker_connections 1024; }\nhttp {\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n` +
      `  client_body_temp_path ${dir}/t1; proxy_temp_path ${dir}/t2; fastcgi_temp_path ${dir}/t3; uwsgi_temp_path ${dir}/t4; scgi_temp_path ${dir}/t5;\n` +
      `  server {\n    listen 127.0.0.1:${http};\n    listen 127.0.0.1:${https} ssl;\n    ssl_certificate ${cert};\n    ssl_certificate_key ${key};\n    root ${dir};\n  }\n}\n`,
  )
  chmodSync(key, 0o644)
  const started = spawnSync(nginx, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], {stdio: 'ignore'})
  if (started.status !== 0) throw new Error(`nginx did not start (see ${dir}/error.log)`)
  // Throughput against thread count: 0 (the main thread alone), 1, 2 and 4 fetch threads,
  // beside the default for this machine (defaultThreads), which is not run twice.
  const threads: FatTool[] = [0, 1, 2, 4].filter((n) => n !== defaultThreads()).map((n) => `mtune --threads ${n}` as const)
  const tools: FatTool[] = ['mtune', 'mtune, undici client', ...threads, ...(spawnSync('aria2c', ['--version']).status === 0 ? (['aria2c'] as const) : []), 'curl']
  const result: FatResult = {sizeMiB, runs, cores: availableParallelism(), defaultThreads: defaultThreads(), hashPerGiB: hashCost(), pageCachePerGiB: [], rows: []}
  try {
    for (const scheme of ['http', 'https'] as const) {
      result.pageCachePerGiB.push(await pageCacheCost(sizeMiB))
      const url = `${scheme}://127.0.0.1:${scheme === 'http' ? http : https}/model.bin`
      const rows = tools.map((tool) => ({scheme, tool, measures: [] as FatMeasure[]}))
      const pull = async (tool: FatTool, run: string): Promise<FatMeasure> => {
        const out = mkdtempSync(join(tmpdir(), 'mtune-fat-out-'))
        const file = join(out, 'model.bin')
        const argv = tool.startsWith('mtune')
          ? [bin, 'pull', url, '-o', file, '--json', ...(tool.startsWith('mtune --threads') ? tool.split(' ').slice(1) : [])]
          : tool === 'aria2c'
            ? ['aria2c', '-x16', '-s16', '-k1M', '--file-allocation=none', '--allow-overwrite=true', '-q', `--ca-certificate=${cert}`, '-d', out, '-o', 'model.bin', url]
            : ['curl', '-sS', '--cacert', cert, '-o', file, url]
        await settle()
        const t = await timed(argv, {NODE_EXTRA_CA_CERTS: cert, ...(tool === 'mtune, undici client' ? {MTUNE_HTTP_CLIENT: 'undici'} : {})})
        const ok = t.code === 0 && spawnSync('sha256sum', [file], {encoding: 'utf8'}).stdout.startsWith(digest)
        console.log(`fatpipe ${scheme} ${tool} ${run}: ${ok ? 'ok' : 'FAILED'} ${(sizeMiB / t.seconds).toFixed(0)} MiB/s, cpu ${t.cpu.toFixed(2)} s (sys ${t.sys.toFixed(2)}), rss ${t.rssMB.toFixed(0)} MB`)
        rmSync(out, {recursive: true, force: true})
        return {seconds: t.seconds, cpu: t.cpu, sys: t.sys, rssMB: t.rssMB, ok}
      }
      // Not counted: the first pulls of a bench cost more system time, whichever tool ran them
      // (2026-12-03: 4.25, 4.27, 4.04, 3.04 s for the first four, then 1.6-2.5 s; aria2c's
      // steady at 2.0), and mtune always ran first. One pull of each tool before the first scheme.
      if (scheme === 'http') for (const row of rows) await pull(row.tool, 'warm-up')
      for (let i = 0; i < runs; i++) {
        // Each run in another order, so that no tool always follows the same one.
        for (let k = 0; k < rows.length; k++) {
          const row = rows[(k + i * 2) % rows.length]
          row.measures.push(await pull(row.tool, `run ${i + 1}`))
        }
      }
      result.rows.push(...rows)
    }
  } finally {
    spawnSync('sh', ['-c', `kill $(cat ${dir}/nginx.pid)`])
    rmSync(dir, {recursive: true, force: true})
  }
  return result
}

/**
 * Every run (and the page-cache baseline) starts in the same state of memory:
 * - nothing left to write back (\`sync\`): a run's 2 GiB written back during the next one had
 *   charged the next tool up to 7 s of system time;
 * - then a pause. On a virtual machine whose balloon reports free pages to the host (as these
 *   do, virtio-balloon free page reporting), memory freed by the previous run's deleted file
 *   goes back to the host about 2 s later, and writing into such pages costs the guest 4-5x
 *   (the host faults them in again, inside the kernel's copy). A tool that started writing
 *   within 2 s of the last delete got warm pages, one that started later cold ones: that, not
 *   the tool, was most of the run-to-run spread of system time. After the pause every tool
 *   starts cold. On bare metal the pause changes nothing.
 */
export const SETTLE_MS = 8_000

async function settle(): Promise<void> {
  spawnSync('sync')
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS))
}

/** CPU seconds per GiB of writing `sizeMiB` into the page cache (1 MiB sequential writes), after settle(). */
async function pageCacheCost(sizeMiB: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'mtune-fat-pc-'))
  try {
    await settle()
    const script = `const fs=require('fs');const b=Buffer.alloc(1<<20,7);const fd=fs.openSync(process.argv[1],'w');for(let i=0;i<${sizeMiB};i++)fs.writeSync(fd,b);fs.closeSync(fd)`
    const t = await timed([process.execPath, '-e', script, join(dir, 'f')], {})
    return t.cpu / (sizeMiB / 1024)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

/** CPU seconds per GiB of sha256 alone here, the median of 3 passes over 256 MiB in memory. */
function hashCost(): number {
  const data = Buffer.alloc(256 * MiB, 7)
  const passes = [0, 1, 2].map(() => {
    const before = process.cpuUsage()
    createHash('sha256').update(data).digest()
    const used = process.cpuUsage(before)
    return ((used.user + used.system) / 1e6) * 4
  })
  return median(passes)
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

export function fatpipeSection(r: FatResult): string {
  const gib = r.sizeMiB / 1024
  const lines = r.rows.map((row) => {
    const m = row.measures
    const sys = m.map((x) => x.sys)
    return `| ${row.scheme} | ${row.tool} | ${median(m.map((x) => x.seconds)).toFixed(2)} | ${(r.sizeMiB / median(m.map((x) => x.seconds))).toFixed(0)} | ${(median(m.map((x) => x.cpu)) / gib).toFixed(2)} | ${Math.min(...sys).toFixed(2)}-${Math.max(...sys).toFixed(2)} | ${median(m.map((x) => x.rssMB)).toFixed(0)} | ${m.filter((x) => x.ok).length}/${m.length} |`
  })
  const by = (scheme: string, tool: FatTool) => r.rows.find((x) => x.scheme === scheme && x.tool === tool)
  const verdicts = (['http', 'https'] as const).map((scheme) => {
    const m = by(scheme, 'mtune')
    const a = by(scheme, 'aria2c')
    if (!m || !a) return `| ${scheme} | aria2c not installed | |`
    const wall = median(m.measures.map((x) => x.seconds)) / median(a.measures.map((x) => x.seconds))
    const ariaCpu = median(a.measures.map((x) => x.cpu))
    const cpu = median(m.measures.map((x) => x.cpu)) / ariaCpu
    // What the CPU ratio would be if mtune cost exactly aria2c's CPU plus the hash.
    const floor = (ariaCpu + r.hashPerGiB * gib) / ariaCpu
    return `| ${scheme} | wall ${wall.toFixed(2)}x aria2c (target <= 1), CPU ${cpu.toFixed(2)}x (target <= 1.5; aria2c's CPU plus sha256 alone would be ${floor.toFixed(2)}x) | ${wall <= 1 && cpu <= 1.5 ? 'met' : '**not met**'} |`
  })
  return `## Fat pipe: ${r.sizeMiB / 1024} GiB from a real nginx on loopback, no caps

nginx (sendfile, one worker) serves the file over HTTP and HTTPS (a certificate made for the run);
mtune (\`pull URL -o FILE\`, sha256 always) against \`aria2c -x16 -s16 -k1M\` (no checksum) and
curl (one stream). "mtune" is its default here (${r.defaultThreads} fetch threads on ${r.cores} cores: 2 for one file,
none below 4 cores); the \`--threads N\` rows are throughput against thread count (0: every request on
the main thread); "mtune, undici client" sends the range requests through undici instead of
mtune's own client (\`MTUNE_HTTP_CLIENT=undici\`). Medians of ${r.runs} runs, the tools alternating (each run in another order, after one pull of each not counted); every run
starts after \`sync\` and a ${SETTLE_MS / 1000} s pause (why: SETTLE_MS in bench/fatpipe.ts, and below). CPU from GNU
time, the client's process alone (every thread of mtune's, the hash included); "sys" is the
range of system seconds over the runs. sha256 alone costs ${r.hashPerGiB.toFixed(2)} CPU s per GiB on this machine
(Node's OpenSSL, measured by the bench over 256 MiB in memory); writing the file into the page
cache alone, in the same state, ${r.pageCachePerGiB.map((x) => x.toFixed(2)).join(' and ')} CPU s per GiB (1 MiB writes, before each scheme's
rows): every tool here pays that.

| scheme | tool | wall s | MiB/s | CPU s per GiB | sys s (min-max) | peak RSS MB | intact |
|---|---|---|---|---|---|---|---|
${lines.join('\n')}

| scheme | mtune against aria2c | this run |
|---|---|---|
${verdicts.join('\n')}
${PROFILE}`
}

/**
 * Where the CPU goes, from one profiled pull (not re-measured by each bench run): kept beside the
 * figures, as issue 17 asks, so that a change to the data plane starts from it.
 */
const PROFILE = `
Profile of one HTTP pull of 2 GiB (perf sampling every thread at 999 Hz, bin/run.js's V8 flags,
16 connections, no fetch threads, after the pause; 5.45 CPU s sampled; 2026-12-01, mtune's own
range client, before the request length and the larger reads below):

| thread | CPU s | where |
|---|---|---|
| hash worker | 2.0 | sha256 1.64 (0.82 per GiB, SHA extensions); re-reading the part file from the page cache 0.27 |
| main | 1.9 | the kernel's socket reads and TCP 0.81; V8's parser and compilers 0.23 (mostly start-up); JavaScript, V8's built-ins, native code and the rest of the kernel 0.83; GC 0.06 |
| libuv's pool (the writes) | 1.1 | copying into the page cache 0.94 (into pages the host had taken back: see the pause above); locks and the rest 0.16 |
| V8's background threads | 0.4 | the optimising compiler 0.31; GC 0.06 |

What changed with it: the range requests no longer go through undici but through mtune's own
HTTP/1.1 client (src/lib/net/wire.ts), whose socket reads straight into the slabs that are
written to disk. Receiving 2 GiB over 16 connections from this nginx, nothing else done, cost
3.1 CPU s through undici's dispatch (1.7 s of it user time: the readable stream, the copy into
the parser's WebAssembly memory, llhttp, a timer per chunk), 1.9 s with a plain 'data'
listener, and 1.0 s with net's \`onread\` into the caller's buffers (user 0.1 s). In the pull,
in 4 interleaved runs each after the pause: HTTP 6.65-7.35 CPU s and 4.4-5.1 s wall against
undici's 9.1-10.1 s and 6.0-6.8 s; HTTPS 7.1-8.0 against 9.2-9.9 CPU s and 5.4-6.4 against
7.0-7.1 s wall; peak RSS 105 against 130 MB. The "mtune, undici client" rows measure it again
in each run. Over HTTPS the socket hands over one 16 KiB TLS record at a time; a body now wakes
its waiting reader for the first bytes at once, then for 64 KiB or 5 ms of them, and queues
contiguous records as one view (one writev entry): about 5% less CPU and wall time over HTTPS
in 3 interleaved pulls each way.

Behind a proxy: GPU servers often have HTTPS_PROXY set for the internet and the rack cache or a
nearby mirror in NO_PROXY. mtune's client used to be skipped whenever a proxy was set, so those
fat pipes went through undici. Now the requests that undici's proxy agent would send direct (the
same NO_PROXY rules, checked against undici in test/proxy-route.test.ts) go through mtune's
client. This pull with \`HTTP_PROXY\` set and the server in \`NO_PROXY\`, 4 interleaved runs each after
the pause (2026-12-01): 3.50 against 4.85 s wall, 5.16 against 6.92 CPU s, peak RSS 123 against
144 MB (medians). \`mtune pull --debug\` names the client and the proxy for each origin.

Where the wall time goes on these 2 cores (perf over the same pull, CPU per thread per half
second): the threads together keep about both cores busy, so the wall time follows the total CPU.
The hash worker sat idle for a second or more in the middle and then hashed alone for 0.3-0.9 s
after the last byte: requests were 3 s of a connection's transfer, on this path 64 MiB each, and
with 16 connections each holding one the contiguous prefix stood still behind the oldest, about
a gigabyte behind the newest. Requests now last 40 first-byte waits (a quarter second to 3 s;
piece-policy.ts), which here means about 1 s, since nginx and mtune share the two cores and a
first byte takes 10-60 ms. In 3 interleaved pulls each way: HTTP 3.15 against 3.49 s, HTTPS 4.93
against 5.15 s (medians). On a machine with cores to spare, that tail is pure waiting; here
moving the hashing earlier mostly moves CPU time, which is why the gain is small. Servers slower
to answer (80 ms and more, the capped scenario) keep 3 s requests. From the test mirror answering
every request after 20 ms (40 MiB/s a connection, 400 MiB/s in all, 512 MiB), where requests now
last about 0.9 s, 4 interleaved runs each: medians 342 against 348 MiB/s, within noise (311-371
against 319-371).

Over HTTPS the main thread spent, of 3.1 CPU s: the kernel's socket reads 0.58, AES-GCM 0.51,
copies inside Node's TLS layer 0.31 (each read is copied into OpenSSL's buffer, then out of it:
TLSWrap's, not mtune's), V8's compilers 0.22, JavaScript 0.16.

Reads of up to 256 KiB (slab-pool.ts): the socket reads into the free end of a slab, so the
slab's size caps a read, and each read is a turn of JavaScript (Node's read callback, the
body's queue, the reader's wake-up). With 64 KiB slabs a 2 GiB pull from this nginx over HTTP
took 38,000 reads, with 256 KiB 12,400, and the main thread's CPU after start-up fell from 1.86
to 1.36 s (perf, one pull each). Over the whole process the gain is smaller and the noise large:
CPU medians over HTTP in three sets of 5-6 interleaved runs after the pause, 5.14 against 5.41,
5.33 against 6.28 and 4.69 against 4.81 s (64 KiB second); over HTTPS, where TLS hands over 16
KiB records whatever the buffer, 6.49 against 6.19 (4 runs) and 5.43 against 6.21 (6 runs). Wall
time moved with CPU or within noise. Peak RSS is 10-20 MB higher. 128 KiB saved about half as
much, 512 KiB less than 256; waking the reader for 128 KiB instead of 64 made no difference.

Shorter requests, tried and not kept: \`--chunk-size 16M\` (about half a second of a connection
here, against about a second adapted) came out 4-8% faster over HTTPS in three sets of 4-5
interleaved runs, and 15% slower over HTTP in one set of 5: noise on this machine, so the rule
stays. The capped scenario has no hash tail to shorten (its digest comes 0.02-0.05 s after the
last byte): the tail here comes with both cores saturated, where the hash waits for a core
rather than for the prefix.

V8's optimising compiler: \`--trace-opt\` counts about 210 functions compiled, 0.56 s of compile
time (on V8's background threads) in one 2 GiB pull; the hot loop (range-fetch's streamBody, the
journal's record, the part file's write and flush, the socket's resume) is most of it. Without
it (\`--max-opt=1\`, 10 runs interleaved with the defaults) or with 8 times the interrupt budget
(4 runs), CPU came out within noise of the defaults: code left unoptimised costs about what
compiling saved.

Start-up: a pull of a 1 KB file costs 0.45 CPU s: Node itself 0.07, oclif about 0.18, and
undici's index 0.13, which loads all of undici (111 modules: fetch, WebSocket, caches, mocks) and,
through the cookie module's use of the global Headers, Node's own bundled undici too. Loading
only the classes mtune uses takes 31 modules and 0.04 s, but the index also puts request and
connect on Dispatcher's prototype, which undici's proxy agent calls for CONNECT tunnels: copying
that wiring into mtune would tie it to undici's private layout, for 2% of a 2 GiB pull. Left.
With the larger reads, start-up is 0.55 of the main thread's 1.9 CPU s in a 2 GiB pull over
HTTP. Two tries that did not help: oclif's command manifest (oclif.manifest.json, so that only
the pull command is loaded; 12 interleaved 1 KB pulls each: medians 0.65 against 0.645 CPU s),
and an esbuild bundle of the pull command with its dependencies (13 MB, systeminformation and
the rest with it: 0.39 CPU s to load against 0.15 for the modules as they are).

What is left is mostly what any client with a checksum does: the socket reads and the page-cache
writes (about what aria2c spends in all), sha256, and re-reading the file for it. Beyond that:
0.13-0.2 CPU s per GiB for the re-read (hashing from memory would save it, but 16 connections write
16 places at once, so about one write in 16 lands at the contiguous prefix, and holding the
others until it reaches them would cost hundreds of MB), about 0.5 s per pull of start-up
(loading the CLI and its modules, the hash worker), and V8's own threads. The verdict rows print
the ratio aria2c's CPU plus sha256 alone would reach: within 1.5x, the rest of mtune would have
to cost no more than aria2c's whole; in a run where that ratio is itself above 1.5 (the
page-cache writes cheap that time, so aria2c's whole is small beside the hash), no client that
hashes could meet the target. A smaller read buffer for the hash (64 or 256 KiB against
1 MiB) made no difference. Nor does moving the re-read off the hash worker pay here: reading
the next block in libuv's pool while the worker hashes this one (as mtune verify does where a
core is spare) took 3.77 against 3.20 s and 3.96 against 3.41 s over HTTP (medians of 6,
interleaved, 2026-12-01), with 0.4-0.5 s more system time: those reads share the pool with the
part file's writes. On a machine with cores to spare it would leave the hash worker only sha256
(user 1.77 s, system 0.02 for 2 GiB, against about 1.75 and 0.3), so it is worth measuring
there.

The spread of system time between identical runs (4 to 13 s when issue 17 was filed) had two
causes, both in the machine and not the tool: a run's 2 GiB still being written back during
the next one (hence \`sync\`), and the balloon's free page reporting (hence the pause): the
same 2 GiB written with 1 MiB sequential writes cost 0.5 s of system time right after another
file was deleted and 2.0-2.8 s eight seconds later. With \`sync\` and the pause it stays bimodal
(2026-12-03): perf profiles of two identical 2 GiB pulls minutes apart spent 1.59 s and 0.24 s
copying into the page cache (\`copy_folio_from_iter_atomic\`, in libuv's write threads), and
\`dd if=/dev/zero bs=1M\` of 2 GiB cost 0.27, 0.82 and 1.43 s of system time in three runs,
whichever program writes: as the balloon's page reporting would make it (pages handed back to
the host cost a fault there when written again), not anything a client controls.

Fewer connections while mtune's event loop is the limit (connection-controller.ts): with the
loop busy 80% of the time, the ramp halves the count, not below 8, and keeps the cut if
throughput held (at least 60%: halving connections that a server caps one by one loses half,
and is then undone for good). Here 8 connections from the start beat 16: 4.2 against 4.9 s wall
(medians of 10 interleaved runs after the pause) and 3.54 against 3.83 s (of 5), with the hash
done 0.2-0.3 s after the last byte against 0.4-0.6, since fewer requests in flight keep the
contiguous prefix closer to the newest bytes; CPU came out within noise (6.9 against 7.6 s in
one set, 5.6 against 5.6 in another). Shedding from 16 once the loop is seen saturated (after
about a second: 16 -> 32 -> 16 -> 8 over HTTP, 16 -> 8 over HTTPS) keeps part of that on a 2
GiB pull, all of it on a longer one: 3.40 against 3.48 and 3.65 against 3.83 s over HTTP, 4.87
against 5.12 over HTTPS (medians of 5-6, interleaved with the build before). None of the capped,
straggler and kill scenarios shed (2-3 pulls each with --debug; the capped one's loop stayed
under half busy). Tried and not kept: sampling the CPU at each first byte, so that the fat pipe
skips its first step (16 -> 32 -> 16) and sheds at 0.55 s instead of 1.3-1.8: the capped
scenario then saw its start-up's busy loop as saturation in some runs, took its first step at
0.72 s instead of 0.29, and 3 of 6 pulls took 3.51 s against 3.42. Nor shedding straight from
the undone first step (32 -> 8 at 0.7 s, judged against the rate 16 reached before it): 4.04
against 4.07 s over HTTP (medians of 6, interleaved), not worth a second path.

Per thread (bench/thread-cpu.ts: each thread's CPU read from /proc every 20 ms during one 2 GiB
pull after the pause; 2026-12-03, with the writes made by the thread that received the bytes,
below; medians of 5 runs, 3 with 4 fetch threads). CPU s per GiB, the main thread's start-up
(0.39-0.40 s, what a 1 KB pull costs it) taken out; a fetch thread's own start-up stays in its
figure. "libuv's pool" is what is left there: the journal's appends and the part file's opening.

| scheme | fetch threads | main | fetch threads, all | hash worker | libuv's pool | V8's threads | wall s |
|---|---|---|---|---|---|---|---|
| http | 0 | 0.79 | | 0.79 | 0.05 | 0.14 | 3.47 |
| http | 2 | 0.11 | 1.02 | 0.77 | 0.05 | 0.20 | 3.49 |
| http | 4 | 0.08 | 1.18 | 0.76 | 0.04 | 0.27 | 3.62 |
| https | 0 | 1.30 | | 0.78 | 0.04 | 0.15 | 4.41 |
| https | 2 | 0.09 | 1.43 | 0.76 | 0.04 | 0.23 | 4.44 |
| https | 4 | 0.10 | 1.74 | 0.76 | 0.04 | 0.37 | 5.12 |

The same table on 2026-12-01, when libuv's pool made the writes (and the host was in a slower
phase: the hash worker took 0.92-1.02): http 0.63 main, 1.02 hash, 0.69 pool, 0.18 V8, 3.45 s;
https 1.27, 1.00, 0.71, 0.19, 4.95 s (no fetch threads); with 2 fetch threads 0.84 (http) and
1.30 (https) for the fetch threads, 0.65-0.69 for the pool. The writes cost the thread that now
makes them much less than they cost the pool: 0.16 CPU s per GiB more on the main thread over
HTTP, against 0.69 in the pool.

What that predicts for a machine with more cores. This is a projection from these costs, not a
measurement (no such machine was lent): it assumes cores as fast as these, no contention for
memory bandwidth or the kernel's locks, and a server, NIC and disk that keep up. A thread busy
all the time moves 1 / (its CPU s per GiB) GiB/s, so a pull goes as fast as its busiest thread:
- one file: the hash worker (about 0.8 CPU s per GiB, sha256 0.62 of it) caps it near 1.3 GiB/s
  (11 Gbit/s) however many cores there are, since a file's sha256 is one sequence and so one
  core. Over HTTP the main thread alone (0.79, its writes included) is about at that cap; over
  HTTPS it is not (1.30: about 0.77 GiB/s), and two fetch threads (0.72 each, their writes
  included) lift the pull to the hash's 1.3 GiB/s;
- a sharded model, four files at once (16 cores then get four fetch threads, one per file): four
  hashes make about 5 GiB/s; four fetch threads, at 0.30 (HTTP) and 0.44 (HTTPS) CPU s per GiB
  of the whole each, their writes included, 3.4 and 2.3 GiB/s. With every request on the main
  thread the whole model stays at 1.3 GiB/s over HTTP and 0.77 over HTTPS;
- aria2c does everything on one thread: at 1.30-1.76 (HTTP) and 2.00-2.22 (HTTPS) CPU s per GiB
  (its writes included, no checksum; the two full runs of 2026-12-01) that is about 0.6-0.8 and
  0.45-0.5 GiB/s, however many cores.

Measured before, and still in force:
- the connection count: on this 0.1 ms path the ramp takes no step, and undoes one, while the
  CPUs have under a fifth of their time idle with mtune using half a core or more (ramp.ts):
  16 connections, against 32-50 before, for about a tenth less CPU and 30-40 MB less memory;
- writes of about 50 ms of a connection's data (128-384 KiB): fewer writev calls, journal lines
  and thread-pool hand-offs than 128 KiB; 512 KiB took the 2 GiB pull's peak RSS too high
  with 32 connections, and 1 MiB with 8 (after shedding) made no difference (HTTP 3.75 against
  3.84 s, 6 runs each; HTTPS 5.12 against 5.13, 4 each; medians, interleaved);
- fetch threads: one alone buys nothing on 2 cores, two cut the wall time a little for a little
  more CPU and 30-40 MB, but cost the capped scenario 4%, so the default stays none below 4
  cores. On more cores they are what lets a pull use more than one; no machine with more was
  lent to measure it;
- left alone, within noise: the checkpoint's fdatasync every second against every 5 s; the V8
  flags in bin/run.js against Node's defaults (peak RSS 20-40 MB higher without them); while
  libuv's pool made the writes, the pool at 2 threads instead of 4 and one write at a time per part file (less system time,
  more user time, the same in all; measured again 2026-12-03: 1.95 against 2.08 s of system
  time, 2.68 against 2.53 of user, medians of 5 interleaved; and once more after the 8 s pause:
  4.02-4.20 against 3.36-3.61 s wall, no CPU saved, 4 runs each, as the next write waits for the
  busy event loop to see the last one end); the journal's appends batched over 25 ms (a pull
  that makes 4,700 writes already appends only about 350 times, those waiting while one is in
  flight going out together: the same CPU and 3.38 against 3.65 s wall over 6 interleaved
  runs each, more than 220 fewer pool operations can explain, so taken for noise); V8 without TurboFan (\`--no-opt\`,
  4.40 CPU s for the 2 GiB pull over HTTP against 4.51 with the flags of bin/run.js alone) and
  with one GC thread (\`--single-threaded-gc\`, 4.44), medians of 4 interleaved, aria2c's 2.73 in
  the same set: within the spread (4.27-5.1).

Where the rest goes, measured 2026-12-03 on one 2 GiB pull over HTTP (perf's syscall counts, not
a timing): 4,178 writev calls (about 500 KiB each) and 19,000 futex calls, of which the main
thread's hand-offs of those writes to libuv's pool are about 4,400 and the pool threads' waits
4,300; the journal's appends are about 470 of the hand-offs. V8's sampling profiler put 0.6 s of
the main thread's 4 s inside those writev calls, which only queue the work: on this VM waking
another thread is dear. In a fast phase (aria2c 3.1 CPU s for the 2 GiB), mtune without its
sha256 and its re-read of the part file (1.4 s together) cost about what aria2c does (3.2 s); the ratio left
is the hash, which aria2c is not asked for here.

Writes made by the thread that received the bytes (write-gate.ts, 2026-12-03). Each write into
the page cache takes the kernel about 0.1 ms (medians 0.09-0.10 ms, 99th percentile 1.3 ms, a
handful per pull 7-35 ms: timed in two pulls), less than handing it to the pool costs. Written
directly with a synchronous writev, the 2 GiB pull over HTTP made 2,600 futex calls instead of
19,000 (perf, one pull each, the same 4,180 pwritev calls). Interleaved after the pause, 5 runs
each of the build before and after, aria2c beside them (CPU s for the 2 GiB, GNU time): HTTP
4.06 against 4.62 (aria2c 3.01: 1.35x against 1.53x), wall 3.40 against 3.76 s (aria2c 5.14),
peak RSS 97 against 129 MB; HTTPS (4 runs: a fifth overlapped another measurement and was
dropped) 5.03 against 5.63 (aria2c 3.65: 1.38x against 1.54x), wall 4.3 against 4.7 s (aria2c
5.2-5.8), peak RSS 98 against 118 MB. The CPU saved was there in every run; a first set of 5
pairs, in a slower phase, gave 4.75 against 5.48 CPU s, and the wall time 2 runs in 5 slower
(5.4 against 4.5 and 4.0 s): there, with the copy into the page cache dear, the pool's thread
had been copying on the second core while the main thread read sockets. aria2c writes on its one
thread too. A write blocks the thread for long only where the kernel makes the writer sleep:
dirty-page throttling on a disk slower than the network, a network or FUSE filesystem waiting
for its server. The gate sends the writes back to the pool once the writes that slept (over 2
ms) add up to 250 ms within a second, for 1 s, doubling to 16 s while each try sleeps again, so
that such a disk costs the loop at most a quarter of a second now and then. Checked on a loop
device written back at 50 MB/s (blkio's throttle, the device's dirty pages held to 1% by its
strict limit), 512 MiB over HTTP: the gate sent the writes to the pool at 0.5, 1.8, 4.1 and 8.5 s
(for 1, 2, 4 and 8 s), and the pull took 10.92 s against the build before's 10.89 (11.10 against
11.12 with 2 fetch threads): the disk's pace either way. The pull then says once that the disk
sets its pace, and adds no connections for 20 s after each time the writes went to the pool: a
step's gain there is the noise of the writes' waits (one such pull with 2 fetch threads had
grown to 64 connections; 16 in each of 3 runs since, at the same 47.7-48.7 MiB/s). The full run of 2026-12-03 after this
change met both CPU targets: 1.50x over HTTP, on the edge, in a run where aria2c's CPU plus
sha256 alone came to 1.42x, and 1.37x over HTTPS. The run before it (06d0c11) gave 1.70x and
1.51x with aria2c at 2.13 CPU s per GiB over HTTP; here aria2c took 1.46, a faster phase, in
which the ratio is harder to meet (runs in slow phases had met it at 1.45x), with the wall time at 0.96x and 0.81x aria2c's and peak RSS 102 and
110 MB against 129 and 123. The capped, straggler, kill and 2 GiB rows held (150.3 MiB/s capped).
`
