import {spawn, spawnSync} from 'node:child_process'
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
export type FatTool = 'mtune' | `mtune --threads ${number}` | 'aria2c' | 'curl'
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
  rows: Array<{scheme: 'http' | 'https'; tool: FatTool; measures: FatMeasure[]}>
}

function timed(argv: string[], env: Record<string, string>): Promise<{seconds: number; cpu: number; sys: number; rssMB: number; code: number}> {
  const out = join(tmpdir(), `mtune-fat-time-${process.pid}`)
  return new Promise((resolve) => {
    const child = spawn('/usr/bin/time', ['-o', out, '-f', '%e %U %S %M', ...argv], {stdio: 'ignore', env: {...process.env, ...env}})
    child.once('close', (code) => {
      const [e, u, s, m] = readFileSync(out, 'utf8').trim().split('\n').pop()!.split(' ').map(Number)
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
  // Throughput against thread count: 0 (the main thread alone), 1 and 2 fetch threads, beside
  // the default for this machine (defaultThreads: none below 4 cores).
  const threads: FatTool[] = [0, 1, 2].map((n) => `mtune --threads ${n}` as const)
  const tools: FatTool[] = ['mtune', ...threads, ...(spawnSync('aria2c', ['--version']).status === 0 ? (['aria2c'] as const) : []), 'curl']
  const result: FatResult = {sizeMiB, runs, cores: availableParallelism(), defaultThreads: defaultThreads(), rows: []}
  try {
    for (const scheme of ['http', 'https'] as const) {
      const url = `${scheme}://127.0.0.1:${scheme === 'http' ? http : https}/model.bin`
      const rows = tools.map((tool) => ({scheme, tool, measures: [] as FatMeasure[]}))
      for (let i = 0; i < runs; i++) {
        for (const row of rows) {
          const out = mkdtempSync(join(tmpdir(), 'mtune-fat-out-'))
          const file = join(out, 'model.bin')
          const argv = row.tool.startsWith('mtune')
            ? [bin, 'pull', url, '-o', file, '--json', ...row.tool.split(' ').slice(1)]
            : row.tool === 'aria2c'
              ? ['aria2c', '-x16', '-s16', '-k1M', '--file-allocation=none', '--allow-overwrite=true', '-q', `--ca-certificate=${cert}`, '-d', out, '-o', 'model.bin', url]
              : ['curl', '-sS', '--cacert', cert, '-o', file, url]
          const t = await timed(argv, {NODE_EXTRA_CA_CERTS: cert})
          const ok = t.code === 0 && spawnSync('sha256sum', [file], {encoding: 'utf8'}).stdout.startsWith(digest)
          row.measures.push({seconds: t.seconds, cpu: t.cpu, sys: t.sys, rssMB: t.rssMB, ok})
          console.log(`fatpipe ${scheme} ${row.tool} run ${i + 1}: ${ok ? 'ok' : 'FAILED'} ${(sizeMiB / t.seconds).toFixed(0)} MiB/s, cpu ${t.cpu.toFixed(2)} s (sys ${t.sys.toFixed(2)}), rss ${t.rssMB.toFixed(0)} MB`)
          rmSync(out, {recursive: true, force: true})
          // Each run starts with nothing left to write back: a run's 2 GiB written back during
          // the next one charged the next tool up to 7 s of system time.
          spawnSync('sync')
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
    const cpu = median(m.measures.map((x) => x.cpu)) / median(a.measures.map((x) => x.cpu))
    return `| ${scheme} | wall ${wall.toFixed(2)}x aria2c (target <= 1), CPU ${cpu.toFixed(2)}x (target <= 1.5) | ${wall <= 1 && cpu <= 1.5 ? 'met' : '**not met**'} |`
  })
  return `## Fat pipe: ${r.sizeMiB / 1024} GiB from a real nginx on loopback, no caps

nginx (sendfile, one worker) serves the file over HTTP and HTTPS (a certificate made for the run);
mtune (\`pull URL -o FILE\`, sha256 always) against \`aria2c -x16 -s16 -k1M\` (no checksum) and
curl (one stream). "mtune" is its default here (${r.defaultThreads} fetch thread(s) on ${r.cores} cores: none below 4);
the \`--threads N\` rows are throughput against thread count (0: every request on the main
thread). Medians of ${r.runs} runs, the tools alternating, \`sync\` between runs; CPU from GNU
time, the client's process alone (every thread of mtune's, the hash included); "sys" is the
range of system seconds over the runs.

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
Profile of one HTTPS pull of 2 GiB (\`node --cpu-prof\`, 40 connections, 5.5 s; 2026-12-01):

| thread | busy | where |
|---|---|---|
| main | 2.3 s of 5.7 s (60% idle) | GC 0.49 s, part-file writev 0.41 s, undici JS 0.19 s, TLS and parser in native code 0.17 s, net streams 0.14 s, journal and fs 0.11 s, engine 0.11 s, body batches and slab copies 0.08 s |
| hash worker | 1.6 s | sha256 1.37 s (0.68 s per GiB, SHA extensions), re-reading the part file from the page cache 0.19 s |
| kernel (GNU time, sys) | 2.1-3.6 s, up to 10 s | loopback TCP, page-cache writes, writeback of earlier runs' files |

What it says: mtune's own event loop is not the limit here (it idles 60%); the two cores are,
shared with nginx (its TLS), the kernel and the hash worker. The kernel's share swings most
(2.1 to 10 s of system time between identical runs: earlier runs' 2 GiB files being written
back), which is why the spread is reported. Two levers were measured and not yet applied: the
connection count (on this 0.1 ms path the controller grows to 32-50 connections; fixed at 8 the
same pull took 4.8-5.1 CPU s instead of 5.5-6.0, and no longer wall time), and the V8 flags in
bin/run.js (\`--max-semi-space-size=1 --liftoff-only\` against 16 MiB semi-spaces or Node's
defaults: no difference beyond the kernel's noise in six runs, peak RSS 123-177 MB, all under the
200 MB allowed). The multi-threaded data plane issue 17 asks for is not built.
`
