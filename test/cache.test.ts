import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {once} from 'node:events'
import {existsSync, readFileSync, readdirSync, statfsSync, writeFileSync} from 'node:fs'
import {createServer, type AddressInfo} from 'node:net'
import {homedir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {downloadFile} from '@huggingface/hub'
import {nginxConfig} from '../src/lib/cache/config.js'
import {defaultCacheDir} from '../src/lib/cache/flags.js'
import {findNginx} from '../src/lib/cache/nginx.js'
import {readInOrder} from '../src/lib/cache/warm.js'
import {inTurn} from '../src/lib/cache/warm-source.js'
import {DEFAULT_UPSTREAMS, diskNote, mergeSettings, parseCdnHost, parseListen, parseMinFree, type CacheOptions} from '../src/lib/cache/options.js'
import {proxyWarning} from '../src/lib/cache/serve.js'
import {addUp, modelOf} from '../src/lib/cache/status.js'
import {runCli, startCli} from './support/cli.js'
import {freePort} from './support/free-port.js'
import {startCdn, startFakeHf, startFakeOllama, type HubRepo} from './support/fake-hubs.js'
import {makeContent, startMirror} from './support/mirror-server.js'
import {tempDir} from './support/temp.js'

const MiB = 1024 * 1024
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const closers: Array<() => Promise<unknown>> = []
after(async () => {
  for (const c of closers.reverse()) await c().catch(() => {})
})
const dir = (what = 'cache') => tempDir(what)
const COMMIT = 'c0ffee0000000000000000000000000000c0ffee'
const weights = makeContent(20 * MiB, 91)
const config = Buffer.from('{"model_type": "cached"}\n')

// Tests that need the real nginx say so when it is missing, instead of passing.
const NGINX = findNginx()
const needsNginx = NGINX ? {} : {skip: 'nginx is not installed: apt-get install -y nginx (.ci/run installs it)'}

const repo = (over: Partial<HubRepo> = {}): HubRepo => ({
  id: 'acme/cached',
  commit: COMMIT,
  files: [
    {path: 'model.safetensors', content: weights, lfs: true},
    {path: 'config.json', content: config, lfs: false},
  ],
  ...over,
})

interface Served {
  url: string
  dir: string
  pid: number
  endpoints: {hf: string; modelscope: string; ollama: string; origins: Record<string, string>}
}

/** Whether `pid` is a live nginx (a zombie's command line is empty). */
function isNginx(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('nginx')
  } catch {
    return false
  }
}

/** mtune cache serve on a free loopback port, stopped after the tests. */
async function serve(args: string[] = []): Promise<Served> {
  const d = dir('nginx')
  const r = await runCli(['cache', 'serve', '--dir', d, '--listen', `127.0.0.1:${await freePort()}`, '--json', ...args])
  assert.equal(r.code, 0, r.stderr + r.stdout)
  closers.push(() => runCli(['cache', 'stop', '--dir', d]))
  return JSON.parse(r.stdout) as Served
}

async function hubWithCdn(repos: HubRepo[], options: {ttlMs?: number; rate?: number; token?: string} = {}) {
  const cdn = await startCdn({ttlMs: options.ttlMs, perConnectionRate: options.rate})
  const hub = await startFakeHf(repos, {cdn, token: options.token})
  closers.push(() => hub.close(), () => cdn.close())
  return {cdn, hub}
}

/** A client machine's environment: its own HF cache, nothing inherited. */
function client(extra: Record<string, string> = {}) {
  const home = dir('client')
  return {home, hub: join(home, 'hub'), env: {HF_HOME: home, HF_HUB_CACHE: join(home, 'hub'), HF_TOKEN: '', HF_ENDPOINT: 'http://127.0.0.1:9', XDG_CACHE_HOME: join(home, 'xdg'), ...extra}}
}

/** Requests the cache's nginx logged, besides its own page (which a client asks before pulling). */
const cacheRequests = (cache: Served) =>
  readFileSync(join(cache.dir, 'logs', 'access.log'), 'utf8').split('\n').filter((l) => l && !l.includes('"u":"/-/mtune"')).length

const blobOf = (hubDir: string, content: Buffer) => join(hubDir, 'models--acme--cached', 'blobs', sha256(content))
const cdnBytes = (cdn: {mirror: {bytesSent: number}}) => cdn.mirror.bytesSent
function flipLastByte(path: string) {
  const b = readFileSync(path)
  b[b.length - 1] ^= 0xff
  writeFileSync(path, b)
}

describe('mtune cache: the configuration', () => {
  const options = {
    dir: '/srv/cache',
    listen: {host: '127.0.0.1', port: 8080},
    upstreams: {hf: 'https://huggingface.co', ollama: 'https://registry.ollama.ai', modelscope: 'https://www.modelscope.cn'},
    origins: {models: 'https://mirror.example.com/models'},
    maxSize: 100 * 1024 ** 3,
    minFree: '5%',
    disk: {totalBytes: 2000 * 1024 ** 3, freeBytes: 80 * 1024 ** 3},
    resolvers: ['10.0.0.2', '[fd00::53]'],
    cdnHosts: ['cdn.example.net'],
    caFile: '/etc/ssl/certs/ca-certificates.crt',
  }
  const text = nginxConfig(options)
  const block = (start: string) => {
    const from = text.indexOf(start)
    return text.slice(from, text.indexOf('\n    }', from))
  }

  it('slices only where it talks to a CDN (or a plain mirror), never where a hub redirects', () => {
    assert.match(block('location ^~ /-/cdn/'), /slice 8m;/)
    for (const hub of ['location ^~ /v2/', 'location ~ /resolve/', 'location / {', 'location ^~ /-/modelscope/']) {
      assert.doesNotMatch(block(hub), /slice|proxy_cache mtune/, hub)
      assert.match(block(hub), /error_page 302 = @redirect302/, hub)
    }
  })

  it('keys CDN objects by host and path, without the signature; one fetch for concurrent misses; no credentials to the CDN', () => {
    const cdn = block('location ^~ /-/cdn/')
    assert.match(cdn, /proxy_cache_key \$mtune_cdn_key\$slice_range;/)
    assert.match(text, /map \$request_uri \$mtune_cdn_key \{\n\s+"~\^\/-\/cdn\/https\?\/\(\?<mtune_kh>\[\^\/\?#\]\+\)\(\?<mtune_kp>\[\^\?#\]\*\)"/)
    assert.match(cdn, /proxy_cache_lock on;/)
    assert.match(cdn, /proxy_set_header Authorization "";/)
    assert.match(cdn, /proxy_cache_valid 200 206 365d;/)
  })

  it('keeps clients off Xet, and resolves CDN host names itself with the system name servers', () => {
    assert.match(block('location ~ /resolve/'), /proxy_hide_header X-Xet-Hash;[\s\S]*proxy_hide_header Link;/)
    assert.match(text, /"~\*application\/vnd\\.xet-" "\*\/\*";/)
    assert.match(text, /resolver 10\.0\.0\.2 \[fd00::53\] valid=300s;/)
    assert.match(text, /max_size=102400m/)
  })

  it('keeps --min-free of the disk free whatever --max-size says, and says when --max-size is more than the disk can give', () => {
    assert.match(text, / max_size=102400m min_free=102400m /, '5% of a 2000 GiB disk')
    assert.match(nginxConfig({...options, minFree: parseMinFree('50G')}), / min_free=51200m /)
    assert.doesNotMatch(nginxConfig({...options, minFree: parseMinFree('0')}), /min_free/)
    const unknown = nginxConfig({...options, disk: undefined})
    assert.doesNotMatch(unknown, /min_free=/)
    assert.match(unknown, /# --min-free 5%: the size of the disk under \/srv\/cache is unknown/)
    assert.throws(() => parseMinFree('60%'), /--min-free 60% would keep most of the disk empty/)
    assert.throws(() => parseMinFree('lots'), /--min-free/)
    assert.throws(() => parseMinFree('5'), /--min-free 5: 5% of the disk or 5G\? give the unit \(0 for none\)$/)
    assert.equal(parseMinFree('5%'), '5%')
    // 100 GiB asked, 80 GiB free and 10 GiB cached: the disk is the limit, and min_free holds it.
    const fmt = (n: number) => `${Math.round(n / 1024 ** 3)}G`
    assert.equal(
      diskNote(options, 10 * 1024 ** 3, fmt),
      '--max-size 100G is more than this disk can give the cache (80G free, 10G cached): nginx keeps 100G of it free (--min-free 5%) and evicts the least recently used files beyond that',
    )
    assert.equal(diskNote({...options, disk: {totalBytes: 2000 * 1024 ** 3, freeBytes: 900 * 1024 ** 3}}, 0, fmt), undefined, 'room enough')
    assert.match(diskNote({...options, minFree: '0'}, 0, fmt) ?? '', /with --min-free 0, nothing stops the cache from filling it$/)
  })

  it('fetches only from CDNs: the upstreams\' hosts, the hubs\' CDN domains and --cdn-host', () => {
    assert.match(text, /"~\^huggingface\\\\\.co\$" 1;/)
    assert.match(text, /"~\(\^\|\\\\\.\)hf\\\\\.co\$" 1;/)
    assert.match(text, /"~\(\^\|\\\\\.\)cdn\\\\\.example\\\\\.net\$" 1;/)
    assert.match(block('location ^~ /-/cdn/'), /if \(\$mtune_cdn_allowed = 0\) \{\n\s+return 403/)
  })

  it('takes a --cdn-host as a host name, refusing what would never match a redirect (a URL, a port, a typo)', () => {
    assert.deepEqual(['cdn.example.net', '*.Example.net', '.example.net', '10.0.0.9'].map(parseCdnHost), ['cdn.example.net', '*.example.net', '.example.net', '10.0.0.9'])
    assert.throws(() => parseCdnHost('https://cdn.example.net/files'), {message: /, not a URL: --cdn-host cdn\.example\.net$/})
    for (const v of ['cdn.example.net:443', 'a..b', '-x.example.net', 'cdn example']) assert.throws(() => parseCdnHost(v), {message: /^invalid --cdn-host ".*": give a host name/}, v)
  })

  it('says at serve that nginx will not use the proxy this host is set to go out through', () => {
    const upstreams = {hf: 'https://huggingface.co', ollama: 'https://registry.ollama.ai', modelscope: 'http://10.0.0.9:8080/-/modelscope'}
    const warning = proxyWarning({upstreams, origins: {}}, {httpsProxy: 'http://proxy.corp:3128', noProxy: 'localhost,10.0.0.9'})
    assert.match(warning ?? '', /^a proxy is set here for huggingface\.co, registry\.ollama\.ai, but nginx fetches directly \(it cannot use a proxy\)/)
    assert.equal(proxyWarning({upstreams, origins: {}}, {}), undefined, 'no proxy, nothing to say')
    assert.equal(proxyWarning({upstreams: {...upstreams, hf: 'http://10.0.0.9:8080', ollama: 'http://10.0.0.9:8080'}, origins: {}}, {httpsProxy: 'http://proxy.corp:3128', httpProxy: 'http://proxy.corp:3128', noProxy: '10.0.0.9'}), undefined, 'a site cache in NO_PROXY as upstream')
  })

  it('lives in the system cache directory as root, else in the user\'s, when --dir is not given', () => {
    assert.equal(defaultCacheDir(0, {}), '/var/cache/mtune')
    assert.equal(defaultCacheDir(1000, {XDG_CACHE_HOME: '/home/u/.xdg'}), '/home/u/.xdg/mtune/cache')
    assert.equal(defaultCacheDir(1000, {}), join(homedir(), '.cache', 'mtune', 'cache'))
  })

  it('warm hands slices to the hash in order, with at most twice as many as its workers held', async () => {
    const used: number[] = []
    let held = 0
    let most = 0
    await readInOrder(
      40,
      1,
      4,
      async (i) => {
        held++
        most = Math.max(most, held)
        // Later slices often come back first.
        await new Promise((r) => setTimeout(r, (i * 7) % 5))
        return i
      },
      (i) => {
        held--
        used.push(i)
      },
    )
    assert.deepEqual(used, Array.from({length: 39}, (_, k) => k + 1))
    assert.ok(most <= 8, `held ${most}`)
    await assert.rejects(
      readInOrder(10, 0, 3, async (i) => (i === 4 ? Promise.reject(new Error('reset')) : i), () => {}),
      /reset/,
    )
  })

  it('warm takes small files (one slice or less) several at a time, then each larger file alone', async () => {
    const MiB8 = 8 * 1024 * 1024
    const files = [{name: 'big-1', size: 3 * MiB8}, ...Array.from({length: 10}, (_, i) => ({name: `small-${i}`, size: 1000 + i})), {name: 'exactly-a-slice', size: MiB8}, {name: 'big-2', size: MiB8 + 1}]
    const running = new Set<string>()
    const overlaps: string[][] = []
    const order: string[] = []
    const out = await inTurn(files, 4, async (f) => {
      running.add(f.name)
      overlaps.push([...running])
      // Each waits for the others started with it: nothing here depends on timing.
      await new Promise((r) => setImmediate(r))
      running.delete(f.name)
      order.push(f.name)
      return f.name.toUpperCase()
    })
    assert.deepEqual(out, files.map((f) => f.name.toUpperCase()), "results in the files' order")
    assert.equal(Math.max(...overlaps.map((o) => o.length)), 4, 'four small files at once')
    for (const o of overlaps) if (o.some((n) => n.startsWith('big'))) assert.equal(o.length, 1, `a larger file runs alone: ${o}`)
    assert.deepEqual(order.slice(-2), ['big-1', 'big-2'], 'the larger files after the small ones, in order')
    // A failure stops the small files not yet started.
    let started = 0
    await assert.rejects(inTurn(files, 2, async (f) => (started++, f.name === 'small-1' ? Promise.reject(new Error('refused')) : f.name)), /refused/)
    assert.ok(started < files.length, `${started} started`)
  })

  it('reads --listen as HOST:PORT, [V6]:PORT or a bare PORT on loopback', () => {
    assert.deepEqual(parseListen('10.0.0.5:8080'), {host: '10.0.0.5', port: 8080})
    assert.deepEqual(parseListen('[::1]:8080'), {host: '::1', port: 8080})
    assert.deepEqual(parseListen('8181'), {host: '127.0.0.1', port: 8181})
    assert.throws(() => parseListen('host:0'), /invalid --listen/)
  })

  it('a serve against a running cache changes what its flags name and keeps the rest', () => {
    const base: CacheOptions = {dir: '/c', listen: {host: '127.0.0.1', port: 8080}, upstreams: {...DEFAULT_UPSTREAMS}, origins: {}, maxSize: 500 * 1024 ** 3, minFree: '5%', resolvers: [], cdnHosts: []}
    const running = {listen: {host: '10.0.0.5', port: 8080}, upstreams: {...DEFAULT_UPSTREAMS, hf: 'http://site:8080'}, origins: {m: 'https://mirror/m'}, maxSize: 2 * 1024 ** 4, minFree: String(100 * 1024 ** 3), cdnHosts: ['cdn.example']}
    assert.deepEqual(mergeSettings(base, running, new Set()), {...base, ...running}, 'a bare serve --dir D keeps everything')
    const more = mergeSettings({...base, maxSize: 4 * 1024 ** 4, cdnHosts: ['other.example']}, running, new Set(['maxSize', 'cdnHosts'] as const))
    assert.deepEqual(more, {...base, ...running, maxSize: 4 * 1024 ** 4, cdnHosts: ['other.example']}, 'what is given replaces, lists whole')
    const {minFree: _, ...older} = running
    assert.equal(mergeSettings(base, older, new Set()).minFree, '5%', 'a cache started before --min-free was kept: the default')
  })

  it('adds up traffic from the access log: requests, slices hit and missed, bytes up and served', () => {
    const t = addUp([
      {u: '/-/mtune', len: '80', sent: '30'},
      {u: '/acme/x/resolve/main/a', len: '300', sent: '138', up: '548', s: '302'},
      {u: '/-/cdn/http/h/f', len: '0', sent: '8388900', up: '8388898', cache: 'MISS'},
      {u: '/-/cdn/http/h/f', len: '322', sent: '16777216', up: '8388891', cache: 'MISS'},
      {u: '/-/cdn/http/h/f', len: '0', sent: '8388900', cache: 'HIT'},
      {u: '/-/cdn/http/h/f', len: '296', sent: '16777216', up: '', cache: 'HIT'},
      // The hub unreachable: nginx's own error page, and the hub's refusal, are not bytes saved.
      {u: '/api/models/acme/x', len: '90', sent: '150', up: '', s: '502'},
      {u: '/acme/gated/resolve/main/a', len: '90', sent: '29', up: '250', s: '401'},
    ])
    const {models, ...rest} = t
    assert.deepEqual(rest, {requests: 5, failed: 1, hits: 2, misses: 2, hitRatio: 0.5, bytesUpstream: 548 + 8388898 + 8388891 + 250, bytesServed: 138 + 16777216 * 2})
    assert.deepEqual(models.map((m) => [m.name, m.requests]).sort(), [['hf://acme/gated', 1], ['hf://acme/x', 1]])
  })

  it('names the models the rack asked for, most recent first, as mtune would pull them', () => {
    assert.equal(modelOf('/api/models/Qwen/Qwen2.5-7B/revision/main'), 'hf://Qwen/Qwen2.5-7B')
    assert.equal(modelOf('/datasets/acme/d/resolve/main/x.parquet'), 'hf://datasets/acme/d')
    assert.equal(modelOf('/v2/library/llama3.2/manifests/3b'), 'ollama llama3.2:3b')
    assert.equal(modelOf('/v2/acme/m/manifests/latest'), 'ollama acme/m:latest')
    assert.equal(modelOf('/-/modelscope/api/v1/models/qwen/Qwen2.5/repo/files'), 'modelscope://qwen/Qwen2.5')
    assert.equal(modelOf('/api/v1/models/qwen/Qwen2.5/repo'), 'modelscope://qwen/Qwen2.5', 'as nginx logs it, passed on')
    assert.equal(modelOf('/-/origin/files/llama/x.gguf'), 'origin files: /llama/x.gguf')
    assert.equal(modelOf('/-/cdn/https/cdn-lfs.hf.co/repos/ab/cd'), undefined)
    const t = addUp([
      {t: '1764680000.000', u: '/api/models/a/old/revision/main', len: '90'},
      {t: '1764690000.000', u: '/v2/library/tiny/manifests/latest', len: '90'},
      {t: '1764685000.000', u: '/a/old/resolve/main/x', len: '90'},
    ])
    assert.deepEqual(t.models, [
      {name: 'ollama tiny:latest', requests: 1, lastAt: new Date(1764690000000).toISOString()},
      {name: 'hf://a/old', requests: 2, lastAt: new Date(1764685000000).toISOString()},
    ])
  })
})

describe('mtune cache serve, status, stop (real nginx)', needsNginx, () => {
  it('a master killed outright leaves its workers serving: status says so, serve ends them and starts again, stop ends them', async () => {
    const cache = await serve()
    const port = new URL(cache.url).port
    const killMaster = async () => {
      const {pid} = JSON.parse((await runCli(['cache', 'status', '--dir', cache.dir, '--json'])).stdout)
      process.kill(pid, 'SIGKILL')
      const deadline = Date.now() + 30_000
      while (isNginx(pid)) {
        assert.ok(Date.now() < deadline, 'the master died')
        await new Promise((r) => setTimeout(r, 20))
      }
    }
    await killMaster()
    const status = await runCli(['cache', 'status', '--dir', cache.dir, '--json'])
    const s = JSON.parse(status.stdout)
    assert.equal(s.running, false)
    assert.ok(s.leftover.length >= 1, status.stdout)
    assert.match((await runCli(['cache', 'status', '--dir', cache.dir])).stdout, /^✗ not running \(.*\): its nginx master died, and left processes running \(pids [\d, ]+\); mtune cache serve --dir \S+ ends them and starts it again$/m)
    // The same port: taken by the leftover workers until serve ends them.
    const again = await runCli(['cache', 'serve', '--dir', cache.dir, '--listen', `127.0.0.1:${port}`])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stderr, new RegExp(`^• ended the nginx processes the last master left running when it died \\(pids ${s.leftover.join(', ')}\\)$`, 'm'))
    assert.ok(s.leftover.every((pid: number) => !isNginx(pid)), 'the leftover workers are gone')
    await killMaster()
    const stop = await runCli(['cache', 'stop', '--dir', cache.dir, '--json'])
    const stopped = JSON.parse(stop.stdout)
    assert.deepEqual([stopped.stopped, stopped.pid], [true, null])
    assert.ok(stopped.leftover.length >= 1 && stopped.leftover.every((pid: number) => !isNginx(pid)), stop.stdout)
    assert.equal(JSON.parse((await runCli(['cache', 'status', '--dir', cache.dir, '--json'])).stdout).leftover.length, 0)
  })

  it('starts, says what clients use, reports status, refuses a second start, stops harmlessly twice', async () => {
    const d = dir('nginx')
    const port = await freePort()
    const r = await runCli(['cache', 'serve', '--dir', d, '--listen', `127.0.0.1:${port}`, '--origin', 'models=http://127.0.0.1:9/files', '--max-size', '2G', '--json'])
    assert.equal(r.code, 0, r.stderr)
    closers.push(() => runCli(['cache', 'stop', '--dir', d]))
    const doc = JSON.parse(r.stdout)
    const url = `http://127.0.0.1:${port}`
    assert.deepEqual(Object.keys(doc).sort(), ['action', 'dir', 'endpoints', 'pid', 'url'])
    assert.deepEqual(doc, {url, dir: d, pid: doc.pid, action: 'started', endpoints: {hf: url, modelscope: `${url}/-/modelscope`, ollama: `127.0.0.1:${port}`, origins: {models: `${url}/-/origin/models`}}})
    assert.ok(Number.isInteger(doc.pid) && doc.pid > 0)
    for (const f of ['nginx.conf', 'nginx.pid', 'logs/access.log']) assert.ok(existsSync(join(d, f)), f)

    const again = await runCli(['cache', 'serve', '--dir', d, '--listen', `127.0.0.1:${port}`])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, new RegExp(`already running \\(nginx pid ${doc.pid}\\)`))
    // Another --dir on its port (a typo, or a default dir): the cache already serving there is named.
    const other = dir('nginx')
    const taken = await runCli(['cache', 'serve', '--dir', other, '--listen', `127.0.0.1:${port}`])
    assert.deepEqual([taken.code, taken.stderr.trim()], [7, `Error: cannot listen on 127.0.0.1:${port}: the mtune cache in ${d} (nginx pid ${doc.pid}) serves on that port: use it (mtune cache status --dir ${d}), or choose another port with --listen HOST:PORT`])
    // status and stop in that other dir say where caches do run (other tests' caches may run too).
    const elsewhere = await runCli(['cache', 'status', '--dir', other])
    assert.equal(elsewhere.code, 1)
    assert.match(elsewhere.stdout, new RegExp(`^✗ no cache in ${other}: start one with mtune cache serve --dir ${other}; (one runs|\\d+ run, one) in /`))
    const stopOther = await runCli(['cache', 'stop', '--dir', other, '--json'])
    const stopped = JSON.parse(stopOther.stdout)
    assert.equal(stopped.stopped, false)
    assert.ok(stopped.runningElsewhere.some((c: {dir: string; pid: number; listen: string}) => c.dir === d && c.pid === doc.pid && c.listen === `127.0.0.1:${port}`), stopOther.stdout)

    const status = await runCli(['cache', 'status', '--dir', d, '--json'])
    assert.equal(status.code, 0, status.stderr)
    const s = JSON.parse(status.stdout)
    assert.equal(s.running, true)
    assert.equal(s.answering, true)
    assert.equal(s.disk.maxBytes, 2 * 1024 ** 3)
    // nginx keeps 5% of the disk free (min_free), whatever --max-size says; nginx -t took it.
    const {blocks, bsize} = statfsSync(d)
    assert.ok(Math.abs(s.disk.minFreeBytes - blocks * bsize * 0.05) < 2 * 1024 ** 2, JSON.stringify(s.disk))
    assert.ok(s.disk.freeBytes > 0)
    assert.match(readFileSync(join(d, 'nginx.conf'), 'utf8'), / max_size=2048m min_free=\d+m /)
    assert.deepEqual(s.endpoints, doc.endpoints)
    // The unit for this cache, asked with --dir alone, keeps its port and origin (not the defaults).
    const unit = await runCli(['cache', 'config', '--dir', d, '--systemd'])
    assert.match(unit.stdout, new RegExp(`cache config --dir ${d} --listen 127\\.0\\.0\\.1:${port} .*--max-size 2147483648 --min-free 5% --origin models=http://127\\.0\\.0\\.1:9/files --write`))
    assert.match(unit.stderr, /the settings of the cache in .*, with those given here/)

    const stop = await runCli(['cache', 'stop', '--dir', d])
    assert.equal(stop.code, 0, stop.stderr)
    assert.match(stop.stdout, /stopped the cache/)
    const twice = await runCli(['cache', 'stop', '--dir', d])
    assert.equal(twice.code, 0)
    assert.match(twice.stdout, /nothing to stop/)
    const down = await runCli(['cache', 'status', '--dir', d])
    assert.equal(down.code, 1)
    assert.match(down.stdout, /not running/)
    const never = join(dir('nginx'), 'typo')
    const none = await runCli(['cache', 'status', '--dir', never])
    // Followed by where caches of this host do run, if any (other tests' may).
    assert.equal(none.code, 1)
    assert.match(none.stdout.trim(), new RegExp(`^✗ no cache in ${never}: start one with mtune cache serve --dir ${never}(; .* in /.*)?$`))
  })

  it('a second serve with other settings reloads the running nginx, keeping the rest of its settings and its cache', async () => {
    const {cdn, hub} = await hubWithCdn([repo()])
    const first = await serve(['--hf-upstream', hub.origin, '--max-size', '2G'])
    const warm = await runCli(['pull', 'hf://acme/cached', '--json'], client({MTUNE_CACHE: first.url}).env)
    assert.equal(warm.code, 0, warm.stderr)
    const sent = cdnBytes(cdn)

    const bare = await runCli(['cache', 'serve', '--dir', first.dir, '--json'])
    assert.equal(bare.code, 0, bare.stderr)
    assert.deepEqual([JSON.parse(bare.stdout).action, JSON.parse(bare.stdout).url], ['already-running', first.url], 'no flags: nothing changes')

    const port = await freePort()
    const moved = await runCli(['cache', 'serve', '--dir', first.dir, '--listen', String(port)])
    assert.equal(moved.code, 0, moved.stderr)
    assert.match(moved.stdout, new RegExp(`cache reloaded with the new settings \\(nginx pid ${first.pid}\\) at http://127\\.0\\.0\\.1:${port}`))
    const status = JSON.parse((await runCli(['cache', 'status', '--dir', first.dir, '--json'])).stdout)
    assert.deepEqual([status.answering, status.url, status.disk.maxBytes], [true, `http://127.0.0.1:${port}`, 2 * 1024 ** 3], 'the same nginx on the new port, --max-size kept')
    const again = await runCli(['pull', 'hf://acme/cached', '--json'], client({MTUNE_CACHE: `http://127.0.0.1:${port}`}).env)
    assert.equal(again.code, 0, again.stderr)
    assert.equal(cdnBytes(cdn), sent, 'the hub upstream kept, and the cached slices with it')

    const busy = createServer().listen(0, '127.0.0.1')
    await once(busy, 'listening')
    try {
      const refused = await runCli(['cache', 'serve', '--dir', first.dir, '--listen', `127.0.0.1:${(busy.address() as AddressInfo).port}`])
      assert.equal(refused.code, 7)
      assert.match(refused.stderr, /port is in use/)
    } finally {
      busy.close()
    }
    const still = JSON.parse((await runCli(['cache', 'status', '--dir', first.dir, '--json'])).stdout)
    assert.deepEqual([still.answering, still.url], [true, `http://127.0.0.1:${port}`], 'a refused change leaves the cache as it was')
    assert.ok(!existsSync(join(first.dir, 'nginx.conf.new')))
  })

  it('says what is wrong: bad upstream, port in use, unwritable dir, no nginx; and who can reach a non-loopback cache', async () => {
    const cases: Array<[string[], Record<string, string>, number, RegExp]> = [
      [['--hf-upstream', 'ftp://x'], {}, 2, /invalid --hf-upstream "ftp:\/\/x": only http:\/\/ and https:\/\/ upstreams/],
      [['--hf-upstream', 'https://hub.example.com/some/path'], {}, 2, /give the origin only \(https:\/\/hub\.example\.com\)/],
      [['--listen', 'nonsense'], {}, 2, /invalid --listen "nonsense"/],
      [['--max-size', '10M'], {}, 2, /--max-size 10M is too small/],
      [['--origin', 'no-equals-sign'], {}, 2, /invalid --origin "no-equals-sign": use NAME=URL/],
      [['--origin', 'm=http://a.example/x', '--origin', 'm=http://b.example/y'], {}, 2, /^Error: --origin m is given twice \(http:\/\/a\.example\/x and http:\/\/b\.example\/y\): give each mirror its own NAME$/m],
      [[], {MTUNE_NGINX: '/nonexistent/nginx'}, 7, /nginx is not installed: install it \(Debian\/Ubuntu: sudo apt-get install -y nginx/],
    ]
    for (const [args, env, code, message] of cases) {
      const listen = args.includes('--listen') ? [] : ['--listen', `127.0.0.1:${await freePort()}`]
      const r = await runCli(['cache', 'serve', '--dir', dir('nginx'), ...listen, ...args], env)
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, message)
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one line')
    }
    const busy = createServer().listen(0, '127.0.0.1')
    await once(busy, 'listening')
    closers.push(async () => busy.close())
    const inUse = await runCli(['cache', 'serve', '--dir', dir('nginx'), '--listen', `127.0.0.1:${(busy.address() as AddressInfo).port}`])
    assert.equal(inUse.code, 7)
    assert.match(inUse.stderr, /the port is in use; choose another with --listen/)
    const file = join(dir('nginx'), 'a-file')
    writeFileSync(file, '')
    const unwritable = await runCli(['cache', 'serve', '--dir', join(file, 'cache'), '--listen', `127.0.0.1:${await freePort()}`])
    assert.equal(unwritable.code, 5)
    assert.match(unwritable.stderr, /cannot use .* for the cache \(ENOTDIR\): choose a --dir you can write to/)

    const d = dir('nginx')
    const wide = await runCli(['cache', 'serve', '--dir', d, '--listen', `0.0.0.0:${await freePort()}`])
    closers.push(() => runCli(['cache', 'stop', '--dir', d]))
    assert.equal(wide.code, 0, wide.stderr)
    assert.match(wide.stderr, /every host that can reach it can use this cache/)
  })

  it('prints its configuration and a systemd unit that runs it', async () => {
    const d = dir('nginx')
    const conf = await runCli(['cache', 'config', '--dir', d, '--listen', '127.0.0.1:8181'])
    assert.equal(conf.code, 0, conf.stderr)
    assert.match(conf.stdout, /listen 127\.0\.0\.1:8181;/)
    assert.ok(!existsSync(join(d, 'nginx.conf')), 'printing writes nothing')
    const unit = await runCli(['cache', 'config', '--dir', d, '--listen', '127.0.0.1:8181', '--systemd'])
    assert.equal(unit.code, 0, unit.stderr)
    assert.match(unit.stdout, /^\[Service\]$/m)
    assert.match(unit.stdout, new RegExp(`ExecStartPre=.* cache config --dir ${d} --listen 127\\.0\\.0\\.1:8181 .*--write`))
    assert.match(unit.stdout, new RegExp(`ExecStart=\\S*nginx -p ${d} -c ${d}/nginx\\.conf`))
    const port = await freePort()
    const written = await runCli(['cache', 'config', '--dir', d, '--listen', `127.0.0.1:${port}`, '--write'])
    assert.equal(written.code, 0, written.stderr)
    assert.ok(existsSync(join(d, 'nginx.conf')))

    // Started as the unit starts it (nginx itself, after config --write): status and serve know it.
    const started = spawnSync(NGINX!, ['-p', d, '-c', join(d, 'nginx.conf'), '-e', join(d, 'logs', 'error.log')])
    assert.equal(started.status, 0, String(started.stderr))
    closers.push(() => runCli(['cache', 'stop', '--dir', d]))
    const url = `http://127.0.0.1:${port}`
    let status: {running: boolean; answering: boolean; url: string; endpoints: {hf: string}} | undefined
    for (let i = 0; i < 100 && !status?.answering; i++) {
      status = JSON.parse((await runCli(['cache', 'status', '--dir', d, '--json'])).stdout)
      if (!status?.answering) await new Promise((r) => setTimeout(r, 100))
    }
    assert.deepEqual([status?.running, status?.answering, status?.url, status?.endpoints.hf], [true, true, url, url])
    const again = await runCli(['cache', 'serve', '--dir', d, '--json'])
    assert.equal(again.code, 0, again.stderr)
    assert.equal(JSON.parse(again.stdout).action, 'already-running')
  })
})

describe('plain URLs through the cache\'s origins (real nginx)', needsNginx, () => {
  it('a URL under an --origin goes through the cache (fetched once for the rack); others, and the cache down, go direct', async () => {
    const content = makeContent(6 * MiB, 93)
    const mirror = await startMirror({content, name: 'model.gguf', etag: true})
    const other = await startMirror({content, name: 'other.gguf', etag: true})
    closers.push(() => mirror.close(), () => other.close())
    const cache = await serve(['--origin', `files=${mirror.origin}/file`])
    const page = (await fetch(`${cache.url}/-/mtune`).then((r) => r.json())) as {origins?: Record<string, string>}
    assert.deepEqual(page.origins, {files: `${mirror.origin}/file`}, 'its page lists the origins')
    const doctor = await runCli(['doctor', 'env', '--json'], {MTUNE_CACHE: cache.url})
    const said = JSON.parse(doctor.stdout).findings.find((f: {id: string}) => f.id === 'env.cache')
    assert.match(said.summary, new RegExp(`an mtune cache, answering in \\d+ ms; URLs under ${mirror.origin}/file are pulled through it too`))
    const pullTo = async (url: string, env: Record<string, string>) => {
      const out = join(dir('url-client'), 'model.gguf')
      const r = await runCli(['pull', url, '-o', out, '--json'], env)
      assert.equal(r.code, 0, r.stderr)
      assert.ok(readFileSync(out).equals(content))
      return JSON.parse(r.stdout)
    }
    const first = await pullTo(mirror.url, {MTUNE_CACHE: cache.url})
    assert.deepEqual([first.via, first.url], ['cache', `${cache.url}/-/origin/files/model.gguf`])
    const sent = mirror.bytesSent
    assert.ok(sent >= content.length && sent < 1.5 * content.length, `the mirror sent ${sent}`)
    const second = await pullTo(mirror.url, {MTUNE_CACHE: cache.url})
    assert.equal(second.via, 'cache')
    assert.equal(mirror.bytesSent, sent, 'the second server got it from the cache alone')
    // Not under an origin, with credentials of its own (the cache must not share them), or no cache: direct.
    assert.equal((await pullTo(other.url, {MTUNE_CACHE: cache.url})).via, 'origin')
    assert.equal((await pullTo(mirror.url.replace('http://', 'http://ops:pw@'), {MTUNE_CACHE: cache.url})).via, 'origin')
    assert.equal((await pullTo(mirror.url, {MTUNE_CACHE: 'http://127.0.0.1:9'})).via, 'origin')
    assert.equal((await pullTo(mirror.url, {})).via, 'origin')
    // pull --auto measures the cache beside the URL: both are places this file can come from.
    const auto = await runCli(['pull', mirror.url, '--auto', '--budget', '2', '--dry-run', '--json', '--no-public-mirrors'], {MTUNE_CACHE: cache.url})
    assert.equal(auto.code, 0, auto.stderr)
    const urls = JSON.parse(auto.stdout).decision.candidates.map((c: {url: string}) => c.url)
    assert.deepEqual(urls.sort(), [`${cache.url}/-/origin/files/model.gguf`, mirror.url].sort())
    // A list (pull -i): the URLs under an origin through the cache, the others direct, in one pull.
    const listDir = dir('url-list')
    writeFileSync(join(listDir, 'urls.txt'), `${mirror.url}\n${other.url}\n`)
    const before = mirror.bytesSent
    const listed = await runCli(['pull', '-i', join(listDir, 'urls.txt'), '-o', join(listDir, 'out'), '--json'], {MTUNE_CACHE: cache.url})
    assert.equal(listed.code, 0, listed.stderr)
    assert.equal(JSON.parse(listed.stdout).via, 'cache')
    assert.equal(mirror.bytesSent, before, 'the cached file came from the cache')
    for (const name of ['model.gguf', 'other.gguf']) assert.ok(readFileSync(join(listDir, 'out', name)).equals(content), name)
    const plainAuto = await runCli(['pull', other.url, '--auto', '--budget', '2', '--dry-run', '--json'], {MTUNE_CACHE: cache.url})
    assert.deepEqual(JSON.parse(plainAuto.stdout).decision.candidates.map((c: {url: string}) => c.url), [other.url], 'not under an origin: the URL alone')
  })
})

describe('mtune cache warm (real nginx)', needsNginx, () => {
  it('reads a model through the cache once, verified, so that the fleet\'s pulls cost the CDN nothing; says when the cache holds other bytes', async () => {
    const {cdn, hub} = await hubWithCdn([repo()])
    const cache = await serve(['--hf-upstream', hub.origin])
    const warm = await runCli(['cache', 'warm', 'hf://acme/cached', '--json'], {MTUNE_CACHE: cache.url})
    assert.equal(warm.code, 0, warm.stderr)
    const w = JSON.parse(warm.stdout)
    assert.deepEqual(Object.keys(w).sort(), ['bytes', 'cache', 'cachedBytes', 'files', 'intact', 'seconds', 'source', 'version'])
    assert.deepEqual([w.source, w.intact, w.bytes, w.cachedBytes], ['hf://acme/cached@main', true, weights.length + config.length, 0])
    assert.deepEqual(w.files.map((f: {name: string; verified: boolean}) => [f.name, f.verified]).sort(), [['config.json', true], ['model.safetensors', true]])
    const warmed = cdnBytes(cdn)
    assert.ok(warmed >= weights.length && warmed < 1.1 * weights.length, `the CDN sent ${warmed}`)
    // The rollout: every server's pull is a hit.
    const pulls = await Promise.all([1, 2, 3].map(() => runCli(['pull', 'hf://acme/cached', '--json'], client({MTUNE_CACHE: cache.url}).env)))
    for (const r of pulls) assert.deepEqual([r.code, JSON.parse(r.stdout).via], [0, 'cache'], r.stderr)
    assert.equal(cdnBytes(cdn), warmed, 'nothing more from the CDN')
    // Again: all of it was cached; said in one line. The cache running in --dir is found without --cache.
    const again = await runCli(['cache', 'warm', 'hf://acme/cached', '--dir', cache.dir], {MTUNE_CACHE: ''})
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, new RegExp(`^✓ hf://acme/cached@main: 2 files, 20\\.0 MiB in the cache at ${cache.url.replace(/\/$/, '')} \\(100% was cached already\\); \\d+ B fetched upstream in .*, verified$`, 'm'))
    // Bytes changed on the cache's disk are found, not passed on as warmed.
    const stored = readdirSync(join(cache.dir, 'cache'), {recursive: true, withFileTypes: true}).filter((e) => e.isFile())
    for (const e of stored) flipLastByte(join(e.parentPath, e.name))
    const bad = await runCli(['cache', 'warm', 'hf://acme/cached'], {MTUNE_CACHE: cache.url})
    assert.equal(bad.code, 4, bad.stdout + bad.stderr)
    assert.match(bad.stdout, /✗ model\.safetensors: the cache serves other bytes than were published/)
    assert.match(bad.stdout, /not intact in the cache at .*: clear its cache\/ folder/)
    // Refused before anything is read: a URL under none of its origins, another registry's model, no cache at all.
    const refusals: Array<[string[], Record<string, string>, RegExp]> = [
      [['http://127.0.0.1:9/x.gguf'], {MTUNE_CACHE: cache.url}, /is under none of the origins of the cache at .* \(it serves no plain mirror\): add one with mtune cache serve --origin NAME=URL-PREFIX/],
      [['ollama://127.0.0.1:9/library/tiny', '--insecure'], {MTUNE_CACHE: cache.url}, /serves the Ollama registry registry\.ollama\.ai, not 127\.0\.0\.1:9: it cannot hold this model/],
      [['hf://acme/cached', '--dir', dir('no-cache')], {MTUNE_CACHE: ''}, /^Error: no cache is running in .*: give the cache with --cache URL.*; (one runs|\d+ run, one) in \/.*: mtune cache warm hf:\/\/acme\/cached --dir \//],
    ]
    for (const [args, env, said] of refusals) {
      const r = await runCli(['cache', 'warm', ...args], env)
      assert.equal(r.code, 2, args.join(' '))
      assert.match(r.stderr, said)
    }
  })

  it('warms an Ollama model by its blobs, and a plain URL under an --origin', async () => {
    const cdn = await startCdn()
    const layer = makeContent(9 * MiB, 77)
    const registry = await startFakeOllama([{namespace: 'library', model: 'tiny', tag: 'latest', blobs: [Buffer.from('{"model_format":"gguf"}'), layer]}], cdn)
    const content = makeContent(5 * MiB, 78)
    const mirror = await startMirror({content, name: 'x.gguf', etag: true})
    closers.push(() => registry.close(), () => cdn.close(), () => mirror.close())
    const cache = await serve(['--ollama-upstream', registry.origin, '--origin', `files=${mirror.origin}/file`])
    const host = new URL(registry.origin).host
    // Without --insecure the name is https://HOST: the line tells the two apart, and names the flag.
    const tls = await runCli(['cache', 'warm', `ollama://${host}/library/tiny`], {MTUNE_CACHE: cache.url})
    assert.equal(tls.code, 2, tls.stderr)
    assert.match(tls.stderr, new RegExp(`serves the Ollama registry http://${host}, not https://${host}: it cannot hold this model \\(--insecure names the one it serves\\)$`, 'm'))
    const o = await runCli(['cache', 'warm', `ollama://${host}/library/tiny`, '--insecure', '--json'], {MTUNE_CACHE: cache.url})
    assert.equal(o.code, 0, o.stderr)
    assert.deepEqual([JSON.parse(o.stdout).intact, JSON.parse(o.stdout).files.every((f: {verified: boolean}) => f.verified)], [true, true])
    const sent = cdn.mirror.bytesSent
    assert.ok(sent >= layer.length, `${sent}`)
    const models = dir('ollama')
    const pulled = await runCli(['pull', `ollama://${host}/library/tiny`, '--insecure'], {MTUNE_CACHE: cache.url, OLLAMA_MODELS: models})
    assert.equal(pulled.code, 0, pulled.stderr)
    assert.equal(cdn.mirror.bytesSent, sent, 'the pull after the warm was all hits')
    const u = await runCli(['cache', 'warm', mirror.url, '--json'], {MTUNE_CACHE: cache.url})
    assert.equal(u.code, 0, u.stderr)
    assert.deepEqual(JSON.parse(u.stdout).files, [{name: 'x.gguf', size: content.length, cachedBytes: 0, verified: null}], 'a URL has no digest to check')
    const before = mirror.bytesSent
    assert.equal((await runCli(['pull', mirror.url, '-o', join(dir('url'), 'x.gguf')], {MTUNE_CACHE: cache.url})).code, 0)
    assert.equal(mirror.bytesSent, before)
  })
})

describe('pulling through mtune cache (real nginx)', needsNginx, () => {
  it('N servers pulling one model at once cost the CDN about one copy; later pulls are all hits; every copy verified', async () => {
    const {cdn, hub} = await hubWithCdn([repo()])
    const cache = await serve(['--hf-upstream', hub.origin])
    const clients = Array.from({length: 4}, () => client({MTUNE_CACHE: cache.url}))
    const runs = await Promise.all(clients.map((c) => runCli(['pull', 'hf://acme/cached', '--json'], c.env)))
    for (const [i, r] of runs.entries()) {
      assert.equal(r.code, 0, r.stderr)
      assert.equal(JSON.parse(r.stdout).via, 'cache')
      assert.ok(readFileSync(blobOf(clients[i].hub, weights)).equals(weights), `client ${i}`)
      assert.equal(readFileSync(join(clients[i].hub, 'models--acme--cached', 'snapshots', COMMIT, 'config.json'), 'utf8'), config.toString())
      assert.equal(readFileSync(join(clients[i].hub, 'models--acme--cached', 'refs', 'main'), 'utf8'), COMMIT)
    }
    const cold = cdnBytes(cdn)
    assert.ok(cold >= weights.length && cold <= weights.length * 1.25, `the CDN sent ${(cold / weights.length).toFixed(2)} copies for 4 pulls`)
    assert.equal(cdn.authSeen, 0)
    const later = client({MTUNE_CACHE: cache.url})
    const warm = await runCli(['pull', 'hf://acme/cached'], later.env)
    assert.equal(warm.code, 0, warm.stderr)
    assert.match(warm.stdout, new RegExp(`pulled \\([^)]*\\) through the cache at ${cache.url.replace(/\/$/, '')}, verified`), 'the result line says where the bytes came from')
    assert.equal(cdnBytes(cdn), cold, 'a warm pull costs the CDN nothing')
    const status = JSON.parse((await runCli(['cache', 'status', '--dir', cache.dir, '--json'])).stdout)
    assert.ok(status.hits > 0 && status.bytesServed >= 5 * weights.length, JSON.stringify(status))
    assert.ok(status.bytesUpstream < 1.3 * weights.length, JSON.stringify(status))
    assert.equal(status.models[0].name, 'hf://acme/cached', 'what the rack asked for, by its name')
    assert.ok(status.models[0].requests >= 5 * 2, JSON.stringify(status.models))
  })

  it('verify --repair fetches through the cache, only the bad file; the hub is the fallback', async () => {
    const {cdn, hub} = await hubWithCdn([repo()])
    const cache = await serve(['--hf-upstream', hub.origin])
    const c = client({MTUNE_CACHE: cache.url})
    assert.equal((await runCli(['pull', 'hf://acme/cached'], c.env)).code, 0)
    const sent = cdnBytes(cdn)
    const blob = blobOf(c.hub, weights)
    flipLastByte(blob)
    const r = await runCli(['verify', 'hf://acme/cached', '--repair', '--json'], c.env)
    assert.equal(r.code, 0, r.stdout + r.stderr)
    const report = JSON.parse(r.stdout)
    assert.deepEqual([report.intact, report.repair.files, report.repair.via], [true, ['model.safetensors'], cache.url.replace(/\/$/, '')])
    assert.equal(cdnBytes(cdn), sent, 'the repair came from the cache')
    assert.ok(readFileSync(blob).equals(weights))
    // The cache down: the hub, with one warning.
    flipLastByte(blob)
    const down = await runCli(['verify', 'hf://acme/cached', '--repair'], {...c.env, MTUNE_CACHE: `http://127.0.0.1:${await freePort()}`, HF_ENDPOINT: hub.origin})
    assert.equal(down.code, 0, down.stdout + down.stderr)
    assert.match(down.stderr, /does not answer: pulling from the origin instead/)
    assert.match(down.stdout, /✓ repaired: fetched 1 file: model\.safetensors/)
    assert.ok(readFileSync(blob).equals(weights))
  })

  it('the Hugging Face JS client downloads through the cache as its hub, and nothing reaches Xet', async () => {
    const {hub, cdn} = await hubWithCdn([repo({xet: true})])
    const cache = await serve(['--hf-upstream', hub.origin])
    for (const path of ['model.safetensors', 'config.json']) {
      const blob = await downloadFile({repo: 'acme/cached', path, hubUrl: cache.url})
      assert.ok(blob, path)
      const bytes = Buffer.from(await blob.arrayBuffer())
      assert.ok(bytes.equals(path === 'config.json' ? config : weights), path)
    }
    assert.deepEqual(hub.xetRequests, [], 'nothing went to the Xet endpoints')
    assert.ok(cdnBytes(cdn) > 0, 'the weights came from the CDN through the cache')
    const head = await fetch(`${cache.url}/acme/cached/resolve/main/model.safetensors`, {method: 'HEAD', redirect: 'manual'})
    assert.equal(head.status, 302)
    assert.equal(head.headers.get('x-repo-commit'), COMMIT)
    assert.equal(head.headers.get('x-linked-size'), String(weights.length))
    assert.equal(head.headers.get('x-linked-etag'), `"${sha256(weights)}"`)
    assert.equal(head.headers.get('x-xet-hash'), null)
    assert.equal(head.headers.get('link'), null)
    assert.match(head.headers.get('location') ?? '', new RegExp(`^${cache.url}/-/cdn/http/127\\.0\\.0\\.1:\\d+/file/`), 'an absolute Location, back to the cache')
  })

  it('gated: refused without a token through a warm cache, served with one; the CDN never sees a token', async () => {
    const {hub, cdn} = await hubWithCdn([repo({gated: true})], {token: 'hf_gated'})
    const cache = await serve(['--hf-upstream', hub.origin])
    const withToken = client({MTUNE_CACHE: cache.url, HF_TOKEN: 'hf_gated'})
    const ok = await runCli(['pull', 'hf://acme/cached'], withToken.env)
    assert.equal(ok.code, 0, ok.stderr)
    const warm = cdnBytes(cdn)
    const without = client({MTUNE_CACHE: cache.url})
    const refused = await runCli(['pull', 'hf://acme/cached'], without.env)
    assert.equal(refused.code, 3)
    assert.match(refused.stderr, /is gated: request access on the model's page and give a token \(HF_TOKEN\)/)
    assert.doesNotMatch(refused.stderr, /pulling from the origin/, 'the hub\'s verdict is not a cache failure')
    const direct = await fetch(`${cache.url}/acme/cached/resolve/${COMMIT}/model.safetensors`, {redirect: 'manual'})
    assert.equal(direct.status, 401, 'the resolve through a warm cache is refused without a token')
    assert.equal(direct.headers.get('x-error-code'), 'GatedRepo')
    assert.ok(!existsSync(blobOf(without.hub, weights)))
    assert.equal(cdn.authSeen, 0)
    assert.equal(cdnBytes(cdn), warm)
    assert.ok(!readFileSync(join(cache.dir, 'logs', 'access.log'), 'utf8').includes('hf_gated'), 'the token is not logged')
  })

  it('a cached object keeps serving after its signed link expired', async () => {
    const {hub, cdn} = await hubWithCdn([repo()], {ttlMs: 1_500})
    const cache = await serve(['--hf-upstream', hub.origin])
    const first = await fetch(`${cache.url}/acme/cached/resolve/${COMMIT}/model.safetensors`, {redirect: 'manual'})
    const location = first.headers.get('location')!
    const warmed = await fetch(location)
    assert.ok(Buffer.from(await warmed.arrayBuffer()).equals(weights))
    // Setup, not an assertion: wait until the link's own Expires has passed.
    const expires = Number(new URL(location).searchParams.get('Expires')) * 1000
    while (Date.now() <= expires + 200) await new Promise((r) => setTimeout(r, 100))
    const sent = cdnBytes(cdn)
    const late = await fetch(location, {headers: {range: 'bytes=1000-1999'}})
    assert.equal(late.status, 206)
    assert.ok(Buffer.from(await late.arrayBuffer()).equals(weights.subarray(1000, 2000)))
    assert.equal(cdnBytes(cdn), sent, 'served from the cache, the CDN not asked')
    assert.equal(cdn.expiredRefusals, 0)
  })

  it('a cold cache behind a CDN link that expires mid-pull: the pull renews it and finishes, verified', async () => {
    const {hub, cdn} = await hubWithCdn([repo()], {ttlMs: 2_000, rate: 3 * MiB})
    const cache = await serve(['--hf-upstream', hub.origin])
    const c = client({MTUNE_CACHE: cache.url})
    const r = await runCli(['pull', 'hf://acme/cached', '--json', '-c', '2', '--max-connections', '2'], c.env)
    assert.equal(r.code, 0, r.stderr)
    assert.ok(readFileSync(blobOf(c.hub, weights)).equals(weights))
    assert.ok(hub.requests.filter((q) => q.path.includes('/resolve/') && q.path.includes('model.safetensors')).length >= 2, 'the link was renewed through the hub')
    assert.equal(cdn.authSeen, 0)
  })

  it('chains: a rack cache behind a site cache behind the hub fetches once from the CDN', async () => {
    const {hub, cdn} = await hubWithCdn([repo()])
    const site = await serve(['--hf-upstream', hub.origin])
    const rack = await serve(['--hf-upstream', site.url])
    const a = client({MTUNE_CACHE: rack.url})
    const r = await runCli(['pull', 'hf://acme/cached', '--json'], a.env)
    assert.equal(r.code, 0, r.stderr)
    assert.ok(readFileSync(blobOf(a.hub, weights)).equals(weights))
    const once = cdnBytes(cdn)
    assert.ok(once >= weights.length && once <= weights.length * 1.25, `${once}`)
    // Another rack under the same site: the site cache serves it, the CDN is not asked again.
    const rack2 = await serve(['--hf-upstream', site.url])
    const b = client({MTUNE_CACHE: rack2.url})
    assert.equal((await runCli(['pull', 'hf://acme/cached'], b.env)).code, 0)
    assert.equal(cdnBytes(cdn), once)
    const siteStatus = JSON.parse((await runCli(['cache', 'status', '--dir', site.dir, '--json'])).stdout)
    assert.ok(siteStatus.hits > 0, JSON.stringify(siteStatus))
  })

  it('Ollama: blob answers carry a Location and honour Range; pull ollama:// --cache writes the registry\'s name', async () => {
    const cdn = await startCdn()
    const layer = makeContent(6 * MiB, 93)
    const cfg = Buffer.from('{"model_format":"gguf"}')
    const registry = await startFakeOllama([{namespace: 'library', model: 'tiny', tag: 'latest', blobs: [cfg, layer]}], cdn)
    closers.push(() => registry.close(), () => cdn.close())
    const cache = await serve(['--ollama-upstream', registry.origin])
    const blobUrl = `${cache.url}/v2/library/tiny/blobs/sha256:${sha256(layer)}`
    const redirect = await fetch(blobUrl, {redirect: 'manual'})
    assert.equal(redirect.status, 307)
    const location = redirect.headers.get('location')
    assert.match(location ?? '', new RegExp(`^${cache.url}/-/cdn/`), 'ollama pull needs a Location')
    const ranged = await fetch(location!, {headers: {range: 'bytes=100-199'}})
    assert.equal(ranged.status, 206)
    assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(layer.subarray(100, 200)))

    const models = dir('ollama')
    const registryHost = new URL(registry.origin).host
    const r = await runCli(['pull', `ollama://${registryHost}/library/tiny:latest`, '--insecure', '--cache', cache.url, '--json'], {OLLAMA_MODELS: models})
    assert.equal(r.code, 0, r.stderr)
    assert.equal(JSON.parse(r.stdout).via, 'cache')
    assert.ok(existsSync(join(models, 'manifests', registryHost, 'library', 'tiny', 'latest')), 'named after the registry, not the cache')
    assert.deepEqual(readdirSync(join(models, 'manifests')), [registryHost])
    assert.ok(readFileSync(join(models, 'blobs', `sha256-${sha256(layer)}`)).equals(layer))
    const page = JSON.parse(await (await fetch(`${cache.url}/-/mtune`)).text())
    assert.equal(page.upstreams.ollama, registry.origin, 'the cache says which registry it serves')

    // Another registry's model of the same name (ollama://hf.co/..., a private registry): the
    // cache would answer with its own registry's model, stored under the other's name.
    const otherLayer = makeContent(1 * MiB, 94)
    const other = await startFakeOllama([{namespace: 'library', model: 'tiny', tag: 'latest', blobs: [cfg, otherLayer]}], cdn)
    closers.push(() => other.close())
    const otherHost = new URL(other.origin).host
    const before = cacheRequests(cache)
    for (const extra of [['--dry-run'], []]) {
      const direct = await runCli(['pull', `ollama://${otherHost}/library/tiny:latest`, '--insecure', '--cache', cache.url, '--json', ...extra], {OLLAMA_MODELS: models})
      assert.equal(direct.code, 0, direct.stderr)
      assert.equal(JSON.parse(direct.stdout).via ?? 'origin', 'origin')
    }
    const text = await runCli(['pull', `ollama://${otherHost}/library/tiny:latest`, '--insecure', '--cache', cache.url], {OLLAMA_MODELS: models})
    assert.match(text.stderr, new RegExp(`the cache at ${cache.url} serves the Ollama registry ${registryHost}, not ${otherHost}: pulling from ${otherHost} directly`))
    assert.ok(readFileSync(join(models, 'blobs', `sha256-${sha256(otherLayer)}`)).equals(otherLayer), "the named registry's model")
    assert.equal(cacheRequests(cache), before, 'nothing asked of the cache but its own page')
  })

  it("hf:// with --endpoint naming another hub (a company's own) goes there, not to the cache's hub", async () => {
    const {hub} = await hubWithCdn([repo()])
    const cache = await serve(['--hf-upstream', hub.origin])
    // The same name on another hub, with other weights: what the cache would have given was the wrong model.
    const theirs = makeContent(2 * MiB, 95)
    const other = await hubWithCdn([repo({commit: 'b'.repeat(40), files: [{path: 'model.safetensors', content: theirs, lfs: true}]})])
    const c = client({MTUNE_CACHE: cache.url})
    const before = cacheRequests(cache)
    const r = await runCli(['pull', 'hf://acme/cached', '--endpoint', other.hub.origin], c.env)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, new RegExp(`the cache at ${cache.url} serves the Hugging Face hub ${new URL(hub.origin).host}, not ${new URL(other.hub.origin).host}: pulling from ${new URL(other.hub.origin).host} directly`))
    assert.ok(readFileSync(blobOf(c.hub, theirs)).equals(theirs))
    assert.equal(cacheRequests(cache), before, 'nothing asked of the cache but its own page')
    // The cache's own hub, named as the endpoint, is served by the cache.
    const same = await runCli(['pull', 'hf://acme/cached', '--endpoint', hub.origin, '--json'], client({MTUNE_CACHE: cache.url}).env)
    assert.equal(JSON.parse(same.stdout).via, 'cache', same.stderr)
  })

  it('a dead cache: the pull falls back to the origin with one warning', async () => {
    const {hub} = await hubWithCdn([repo()])
    const c = client({HF_ENDPOINT: hub.origin, MTUNE_CACHE: `http://127.0.0.1:${await freePort()}`})
    const r = await runCli(['pull', 'hf://acme/cached', '--json'], c.env)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(JSON.parse(r.stdout).via, 'origin')
    const text = await runCli(['pull', 'hf://acme/cached', '--include', 'config.json'], {...c.env, HF_HUB_CACHE: join(dir('client'), 'hub')})
    assert.equal(text.code, 0, text.stderr)
    assert.equal(text.stderr.match(/does not answer: pulling from the origin instead/g)?.length, 1, text.stderr)
    assert.doesNotMatch(text.stdout, /through the cache/)
    assert.ok(readFileSync(blobOf(c.hub, weights)).equals(weights))
  })

  it('a cache reached through the site\'s proxy that does not answer: the warning points to NO_PROXY', async () => {
    const {hub, cdn} = await hubWithCdn([repo()])
    const {startConnectProxy} = await import('./support/connect-proxy.js')
    const proxy = await startConnectProxy()
    closers.push(() => proxy.close())
    // The hub and its CDN direct (NO_PROXY names them with their ports), the dead cache through the proxy.
    const noProxy = [hub.origin, cdn.mirror.origin].map((o) => new URL(o).host).join(',')
    const c = client({HF_ENDPOINT: hub.origin, MTUNE_CACHE: `http://127.0.0.1:${await freePort()}`, HTTP_PROXY: proxy.url, NO_PROXY: noProxy})
    const r = await runCli(['pull', 'hf://acme/cached', '--include', 'config.json'], c.env)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, new RegExp(`does not answer \\(through the proxy ${new URL(proxy.url).host}: add 127\\.0\\.0\\.1 to NO_PROXY\\): pulling from the origin instead`))
    assert.ok(proxy.hosts.length > 0 && proxy.hosts.every((t) => !noProxy.includes(t)), 'only the cache went through the proxy')
  })

  it('a cache that dies during the pull is left for the origin, keeping what is on disk', async () => {
    const {hub} = await hubWithCdn([repo()], {rate: 2 * MiB})
    const cache = await serve(['--hf-upstream', hub.origin])
    const c = client({HF_ENDPOINT: hub.origin, MTUNE_CACHE: cache.url})
    const run = startCli(['pull', 'hf://acme/cached', '--retries', '2', '--stall-timeout', '3'], c.env)
    let stderr = ''
    run.child.stderr!.on('data', (d) => (stderr += d))
    const deadline = Date.now() + 30_000
    while (!/progress|%/.test(stderr) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    assert.equal((await runCli(['cache', 'stop', '--dir', cache.dir])).code, 0)
    const r = await run.done
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /failed during the pull .*: pulling from the origin instead/)
    assert.doesNotMatch(r.stderr, /MaxListeners/)
    assert.ok(readFileSync(blobOf(c.hub, weights)).equals(weights))
  })

  it('doctor reports the cache a machine is pointed at, and whether it answers; bench measures it', async () => {
    const {hub} = await hubWithCdn([repo()])
    const cache = await serve(['--hf-upstream', hub.origin])
    const up = await runCli(['doctor', 'env', '--json'], {MTUNE_CACHE: cache.url})
    const finding = (out: string) => JSON.parse(out).findings.find((f: {id: string}) => f.id === 'env.cache')
    assert.equal(finding(up.stdout).status, 'pass', up.stdout)
    assert.match(finding(up.stdout).summary, /an mtune cache, answering/)
    const down = await runCli(['doctor', 'env', '--json'], {MTUNE_CACHE: `http://127.0.0.1:${await freePort()}`})
    assert.equal(finding(down.stdout).status, 'warn')
    assert.match(finding(down.stdout).fix, /mtune cache serve/)
    // A server that reaches the hub only through the cache sizes a model through it, as it pulls it.
    const sized = await runCli(['doctor', 'memory', '--model', 'hf://acme/cached', '--json'], {MTUNE_CACHE: cache.url, HF_ENDPOINT: 'http://127.0.0.1:9', HF_TOKEN: ''})
    assert.equal(JSON.parse(sized.stdout).model.size, weights.length + config.length, sized.stdout)
    // HOST:PORT is the cache's address as pull reads it; a value no pull can use fails, with the fix.
    const bare = await runCli(['doctor', 'env', '--json'], {MTUNE_CACHE: new URL(cache.url).host})
    assert.equal(finding(bare.stdout).status, 'pass', bare.stdout)
    for (const [name, value] of [['MTUNE_CACHE', 'cache rack'], ['HF_ENDPOINT', 'ftp://mirror']]) {
      const bad = await runCli(['doctor', 'env', '--json'], {MTUNE_CACHE: '', [name]: value})
      assert.equal(bad.code, 1, bad.stderr)
      assert.equal(finding(bad.stdout).status, 'fail')
      assert.match(finding(bad.stdout).fix, new RegExp(`\\(or unset ${name}\\)$`))
    }
    // The site's proxy set, and the rack cache not in NO_PROXY: it answers, but out and back.
    const {startConnectProxy} = await import('./support/connect-proxy.js')
    const proxy = await startConnectProxy()
    try {
      const proxied = await runCli(['doctor', 'env', '--json'], {MTUNE_CACHE: cache.url, HTTP_PROXY: proxy.url, NO_PROXY: 'localhost'})
      assert.equal(finding(proxied.stdout).status, 'warn', proxied.stdout)
      assert.match(finding(proxied.stdout).summary, new RegExp(`an mtune cache answers, but through the proxy ${new URL(proxy.url).host}`))
      assert.match(finding(proxied.stdout).fix, /^export NO_PROXY=\$\{NO_PROXY:\+\$NO_PROXY,\}127\.0\.0\.1: /)
      assert.ok(proxy.hosts.length > 0, 'the probe went through the proxy, as pulls would')
      const direct = await runCli(['doctor', 'env', '--json'], {MTUNE_CACHE: cache.url, HTTP_PROXY: proxy.url, NO_PROXY: 'localhost,127.0.0.1'})
      assert.equal(finding(direct.stdout).status, 'pass', direct.stdout)
      assert.equal(finding(direct.stdout).values.proxy.value, null)
    } finally {
      await proxy.close()
    }
    const b = await runCli(['bench', '--mirror', 'hf://acme/cached', '--cache', cache.url, '--connections', '1,2', '--chunk-size', '1M', '--duration', '3', '--json'], client({HF_ENDPOINT: hub.origin}).env)
    assert.equal(b.code, 0, b.stderr)
    const measured = JSON.parse(b.stdout).mirrors.map((m: {url: string; ok: boolean}) => [m.url.startsWith(cache.url), m.ok])
    assert.deepEqual(measured.filter(([viaCache]: [boolean]) => viaCache), [[true, true]], JSON.stringify(measured))
  })
})
