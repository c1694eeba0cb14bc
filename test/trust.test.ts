import assert from 'node:assert/strict'
import {once} from 'node:events'
import {createServer, type IncomingMessage} from 'node:http'
import type {AddressInfo} from 'node:net'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {createDispatcher} from '../src/lib/net/dispatcher.js'
import {probe} from '../src/lib/net/probe.js'
import {parseNetrc} from '../src/lib/net/netrc.js'
import {runCli} from './support/cli.js'
import {startConnectProxy} from './support/connect-proxy.js'
import {startCdn, startFakeHf, type HubRepo} from './support/fake-hubs.js'
import {makeContent, mirrors, type MirrorServer} from './support/mirror-server.js'
import {TINYPROXY, startTinyproxy} from './support/tinyproxy.js'
import {tempDir} from './support/temp.js'

const MiB = 1024 * 1024
const closers: Array<() => Promise<void>> = []
after(async () => Promise.all(closers.map((c) => c())))
const dir = (what = 'trust') => tempDir(what)
const content = makeContent(8 * MiB, 71)
const mirror = mirrors(content, after)
const COMMIT = 'fedcba9876543210fedcba9876543210fedcba98'
const fixtures = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'tls')
const tls = {key: readFileSync(join(fixtures, 'key.pem')), cert: readFileSync(join(fixtures, 'cert.pem'))}

const repo = (over: Partial<HubRepo> = {}): HubRepo => ({
  id: 'acme/secret',
  commit: COMMIT,
  files: [
    // 8 MiB: bench measures connections and chunk sizes only on a file of at least that.
    {path: 'model.safetensors', content: makeContent(8 * MiB, 72), lfs: true},
    {path: 'config.json', content: Buffer.from('{"a": 1}\n'), lfs: false},
  ],
  ...over,
})

/** A hub with its CDN, and a stand-in for a public mirror (hf-mirror.com) serving the same repos. */
async function hubAndPublicMirror(repos: HubRepo[]) {
  const cdn = await startCdn()
  const hub = await startFakeHf(repos, {token: 'hf_user_token', cdn})
  const publicCdn = await startCdn()
  // It knows no token: anything the user's token opens is refused to it, as to any stranger.
  const standIn = await startFakeHf(repos, {cdn: publicCdn})
  closers.push(() => hub.close(), () => cdn.close(), () => standIn.close(), () => publicCdn.close())
  const home = dir('hf')
  const env = {HF_ENDPOINT: hub.origin, HF_HOME: home, HF_HUB_CACHE: join(home, 'hub'), HF_TOKEN: 'hf_user_token', MTUNE_HF_PUBLIC_MIRRORS: standIn.origin, XDG_CACHE_HOME: dir('xdg')}
  return {cdn, hub, publicCdn, standIn, env}
}

describe('credentials go only where the user sent them', () => {
  it('pull --auto asks the public mirrors it adds anonymously, and says which candidates got the token', async () => {
    const {hub, standIn, cdn, publicCdn, env} = await hubAndPublicMirror([repo()])
    const r = await runCli(['pull', '--auto', 'hf://acme/secret', '--budget', '2', '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    const doc = JSON.parse(r.stdout)
    const byLabel = (label: string) => doc.decision.candidates.find((c: {label: string}) => c.label === label)
    assert.equal(byLabel(hub.origin).token, true)
    assert.equal(byLabel(standIn.origin).token, false)
    assert.equal(byLabel(standIn.origin).ok, true, 'a public repo is still a candidate there')
    assert.ok(standIn.requests.length > 0, 'the public mirror was asked')
    assert.deepEqual(standIn.requests.filter((q) => q.authorization), [], 'the public mirror never saw an Authorization header')
    assert.ok(hub.requests.some((q) => q.authorization === 'Bearer hf_user_token'), 'the hub the user chose did get the token')
    assert.equal(cdn.authSeen + publicCdn.authSeen, 0, 'no CDN saw a token')

    const text = await runCli(['pull', '--auto', 'hf://acme/secret', '--budget', '2', '--dry-run'], env)
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stderr, new RegExp(`token +sent to .*${hub.origin}.*; not to .*${standIn.origin} \\(not chosen by you: asked anonymously\\)`))
    assert.doesNotMatch(text.stdout + text.stderr, /hf_user_token/)
  })

  it('a gated repo is simply not listed by a public mirror asked without the token; the pull uses the hub', async () => {
    const {hub, standIn, cdn, publicCdn, env} = await hubAndPublicMirror([repo({gated: true})])
    const r = await runCli(['pull', '--auto', 'hf://acme/secret', '--budget', '2', '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    const doc = JSON.parse(r.stdout)
    const stand = doc.decision.candidates.find((c: {label: string}) => c.label === standIn.origin)
    assert.equal(stand.ok, false)
    assert.match(stand.reason, /gated/)
    assert.equal(doc.decision.chosen.label, hub.origin)
    assert.deepEqual(standIn.requests.filter((q) => q.authorization), [])
    assert.ok(doc.files.length === 2 && doc.files.every((f: {sha256?: string; skipped: boolean}) => !f.skipped), 'both files pulled')
    assert.equal(cdn.authSeen + publicCdn.authSeen, 0)
    assert.ok(hub.requests.some((q) => q.authorization === 'Bearer hf_user_token'))
  })

  it('the size look-up (HEAD) after a redirect to another origin carries no token', async () => {
    const seen: Array<{method?: string; authorization?: string}> = []
    // A CDN whose 206 gives no total ("*"), so that the probe asks HEAD for the size.
    const cdn = createServer((req: IncomingMessage, res) => {
      seen.push({method: req.method, authorization: req.headers.authorization})
      if (req.method === 'HEAD') res.writeHead(200, {'content-length': '1000'}).end()
      else res.writeHead(206, {'content-range': 'bytes 0-9/*', 'content-length': '10'}).end('0123456789')
    }).listen(0, '127.0.0.1')
    await once(cdn, 'listening')
    const cdnOrigin = `http://127.0.0.1:${(cdn.address() as AddressInfo).port}`
    const hub = createServer((req, res) => res.writeHead(302, {location: `${cdnOrigin}/blob?sig=1`}).end()).listen(0, '127.0.0.1')
    await once(hub, 'listening')
    closers.push(async () => void (cdn.close(), hub.close()))
    const dispatcher = createDispatcher({stallTimeoutMs: 5_000})
    try {
      const p = await probe(dispatcher, `http://127.0.0.1:${(hub.address() as AddressInfo).port}/resolve/x`, {authorization: 'Bearer secret'}, undefined, 0, 10)
      await p.response?.body.dump()
      assert.equal(p.file.size, 1000, 'the size came from the HEAD')
      assert.deepEqual(
        seen.map((s) => s.method),
        ['GET', 'HEAD'],
      )
      assert.deepEqual(seen.filter((s) => s.authorization), [], 'the CDN never saw the token, on GET or HEAD')
    } finally {
      await dispatcher.destroy()
    }
  })

  it('a Hub file URL pulled as a URL gets the Hub token, as hf:// does; the CDN, a mirror and any other URL never do', async () => {
    const {hub, cdn, standIn, env} = await hubAndPublicMirror([repo({gated: true})])
    const url = `${hub.origin}/acme/secret/resolve/main/model.safetensors`
    const weights = repo().files[0]!.content
    const into = dir()
    const ok = await runCli(['pull', url, '-o', `${into}/`, '--json'], env)
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal(JSON.parse(ok.stdout).size, weights.length)
    assert.equal(JSON.parse(ok.stdout).path, join(into, 'model.safetensors'), "named as the URL given names it, not by the CDN's digest")
    assert.ok(hub.requests.some((q) => q.path.includes('/resolve/') && q.authorization === 'Bearer hf_user_token'))
    assert.equal(cdn.authSeen, 0, 'the CDN never saw it')
    const doctor = await runCli(['doctor', 'disk', '--model', url, '--json'], env)
    assert.equal(JSON.parse(doctor.stdout).model.size, weights.length, 'doctor --model sizes it with the token too')
    // The same file on a host that is not the Hub (the public mirror's stand-in) is asked anonymously.
    const other = await runCli(['pull', `${standIn.origin}/acme/secret/resolve/main/model.safetensors`, '-o', join(dir(), 'w.bin')], env)
    assert.equal(other.code, 3, other.stderr)
    assert.match(other.stderr, /authentication required \(401\) from 127\.0\.0\.1:\d+: give a token \(HF_TOKEN for the Hub, USER:TOKEN@ in the URL, or the host's login in ~\/\.netrc\)/)
    assert.ok(standIn.requests.every((q) => !q.authorization), 'no token for a host that is not the Hub')
    // A list (-i): the Hub's file URL gets the token, another host's in the same list none.
    const listDir = dir()
    writeFileSync(join(listDir, 'hub.txt'), `${url}\n`)
    const listed = await runCli(['pull', '-i', join(listDir, 'hub.txt'), '-o', join(listDir, 'out'), '--json'], env)
    assert.equal(listed.code, 0, listed.stderr)
    assert.equal(JSON.parse(listed.stdout).results[0].size, weights.length)
    writeFileSync(join(listDir, 'mixed.txt'), `${url}\n  out=hub.bin\n${standIn.origin}/acme/secret/resolve/main/model.safetensors\n  out=other.bin\n`)
    const mixed = await runCli(['pull', '-i', join(listDir, 'mixed.txt'), '-o', join(listDir, 'out')], env)
    assert.equal(mixed.code, 3, mixed.stderr)
    assert.match(mixed.stderr, /other\.bin: .*authentication required \(401\)/, 'only the other host refused')
    assert.ok(standIn.requests.every((q) => !q.authorization), 'no token for the other host in the list')
    assert.equal(cdn.authSeen, 0)
    // Without a token, the refusal says what to give.
    const anonymous = await runCli(['pull', url, '-o', join(dir(), 'w.bin')], {...env, HF_TOKEN: ''})
    assert.equal(anonymous.code, 3, anonymous.stderr)
    assert.match(anonymous.stderr, /authentication required \(401\) from /)
  })

  it('bench of a gated hf:// repo sends the token to the hub as a pull does, never to the CDN', async () => {
    const {hub, cdn, env} = await hubAndPublicMirror([repo({gated: true})])
    const r = await runCli(['bench', '--mirror', 'hf://acme/secret', '--connections', '1,2', '--chunk-size', '1M', '--duration', '3', '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    const report = JSON.parse(r.stdout)
    const measured = report.mirrors.find((m: {url: string}) => m.url.startsWith(hub.origin))
    assert.ok(measured?.ok, JSON.stringify(report.mirrors))
    assert.ok(report.grids[0].cells.some((c: {bytes: number}) => c.bytes > 0), 'the grid measured the CDN')
    assert.equal(cdn.authSeen, 0)
    assert.ok(hub.requests.some((q) => q.authorization === 'Bearer hf_user_token'))
    // What to run next pulls the model, not the one file measured.
    assert.match(report.recommendation.command, /^mtune pull hf:\/\/acme\/secret -c [12] --chunk-size 1M$/)
    // From an endpoint other than HF_ENDPOINT, the command names it.
    const other = await runCli(['bench', '--mirror', 'hf://acme/secret', '--endpoint', hub.origin, '--connections', '1', '--chunk-size', '1M', '--duration', '2'], {...env, HF_ENDPOINT: 'http://127.0.0.1:9'})
    assert.equal(other.code, 0, other.stderr)
    assert.match(other.stdout, new RegExp(`^  mtune pull hf://acme/secret --endpoint ${hub.origin} -c 1 --chunk-size 1M$`, 'm'))
  })
})

/** Every request a mirror served came through the proxy: its client port is one of the proxy's upstream sockets. */
function allThrough(m: MirrorServer, upstreamPorts: Set<number>): void {
  assert.ok(m.requests.length > 0)
  const direct = m.requests.filter((q) => !upstreamPorts.has(q.remotePort ?? -1))
  assert.deepEqual(direct, [], `${direct.length} of ${m.requests.length} requests bypassed the proxy`)
}

describe("a host's login in ~/.netrc, as wget, aria2c and requests read it", () => {
  it('parses machines, the default, quoted passwords and macros; the first entry for a host wins', () => {
    const netrc = parseNetrc(['# mirrors', 'machine mirror.example login ops password "pa ss\\"w"', 'machine MIRROR.example login other password x', 'macdef init', 'cd /pub', '', 'default login anonymous password guest@'].join('\n'))
    assert.deepEqual(netrc.machines.get('mirror.example'), {login: 'ops', password: 'pa ss"w'})
    assert.deepEqual(netrc.default, {login: 'anonymous', password: 'guest@'})
    assert.equal(netrc.machines.size, 1)
  })

  it('a URL without credentials gets its host\'s login, never shown', async () => {
    const d = dir()
    const basic = `Basic ${Buffer.from('ops:pa ss').toString('base64')}`
    const locked = await mirror({authorize: (req) => (req.headers.authorization === basic ? undefined : 401)})
    const netrcFile = join(d, 'netrc')
    writeFileSync(netrcFile, `machine 127.0.0.1 login ops password "pa ss"\n`)
    const refused = await runCli(['pull', locked.url, '-o', join(d, 'a.bin')], {NETRC: join(d, 'none')})
    assert.equal(refused.code, 3, refused.stderr)
    assert.match(refused.stderr, /the host's login in ~\/\.netrc/)
    const ok = await runCli(['pull', locked.url, '-o', join(d, 'a.bin'), '--json', '--debug'], {NETRC: netrcFile})
    assert.equal(ok.code, 0, ok.stderr)
    assert.ok(readFileSync(join(d, 'a.bin')).equals(content))
    assert.ok(!`${ok.stdout}${ok.stderr}`.includes('pa ss') && !`${ok.stdout}${ok.stderr}`.includes('pa%20ss'), 'the password is never shown')
    // A user name in the URL that the entry's login does not match keeps the URL as given.
    const named = await runCli(['pull', locked.url.replace('http://', 'http://someone@'), '-o', join(d, 'b.bin')], {NETRC: netrcFile})
    assert.equal(named.code, 3, named.stderr)
  })
})

describe('bench and pull --auto behind a proxy', () => {
  const proxyEnv = (url: string) => ({HTTP_PROXY: url, HTTPS_PROXY: '', http_proxy: '', https_proxy: '', NO_PROXY: '', no_proxy: '', XDG_CACHE_HOME: dir('xdg')})

  /** bench through a proxy: measured, and the proxy named as the hop (a tunnel for https://, else forwarded). */
  async function benchThrough(m: MirrorServer, proxyUrl: string, env: Record<string, string> = {}) {
    const r = await runCli(['bench', '--mirror', m.url, '--connections', '1,2', '--chunk-size', '1M', '--duration', '3', '--json'], {...proxyEnv(proxyUrl), ...env})
    assert.equal(r.code, 0, r.stderr)
    const report = JSON.parse(r.stdout)
    const measured = report.mirrors[0]
    assert.equal(measured.ok, true, measured.reason)
    assert.equal(measured.proxy, new URL(proxyUrl).host)
    const hop = m.url.startsWith('https:') ? 'tunnelMs' : 'proxyConnectMs'
    assert.ok(measured[hop].median >= 0, JSON.stringify(measured))
    assert.equal(measured.connectMs, undefined, 'no connect time (and so no RTT) for a path hidden behind the proxy')
    assert.ok(report.grids[0].cells.length > 0)
  }

  it('bench measures through HTTP_PROXY, and names the proxy hop as such', async () => {
    const m = await mirror({perConnectionRate: 4 * MiB})
    const proxy = await startConnectProxy()
    closers.push(() => proxy.close())
    await benchThrough(m, proxy.url)
    allThrough(m, proxy.upstreamPorts)
    const table = await runCli(['bench', '--mirror', m.url, '--connections', '1', '--chunk-size', '1M', '--duration', '2'], proxyEnv(proxy.url))
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, new RegExp(`to proxy ${new URL(proxy.url).host} \\(forwards\\)`))
  })

  it('pull --auto measures and pulls through the proxy', async () => {
    const m = await mirror({perConnectionRate: 4 * MiB})
    const proxy = await startConnectProxy()
    closers.push(() => proxy.close())
    const r = await runCli(['pull', '--auto', m.url, '--no-public-mirrors', '--budget', '2', '-o', dir(), '--json'], proxyEnv(proxy.url))
    assert.equal(r.code, 0, r.stderr)
    assert.equal(JSON.parse(r.stdout).result.size, content.length)
    allThrough(m, proxy.upstreamPorts)
  })

  it('bench works through a real proxy (Debian tinyproxy), tunnelling https://', {skip: TINYPROXY ? false : 'tinyproxy is not installed: apt-get install -y tinyproxy (.ci/run does)'}, async () => {
    const m = await mirror({perConnectionRate: 4 * MiB, tls})
    const proxy = await startTinyproxy()
    closers.push(() => proxy.close())
    await benchThrough(m, proxy.url, {HTTPS_PROXY: proxy.url, NODE_EXTRA_CA_CERTS: join(fixtures, 'cert.pem')})
    assert.match(proxy.log(), new RegExp(`CONNECT.*127\\.0\\.0\\.1:${new URL(m.url).port}`), 'tinyproxy tunnelled to the mirror')
  })

  it('a proxy that tunnels only to port 443 (Debian\'s and Squid\'s defaults) forwards plain http to any port; an https server on another port is refused, pointing to NO_PROXY', {skip: TINYPROXY ? false : 'tinyproxy is not installed'}, async () => {
    const [plain, secure] = [await mirror({}), await mirror({tls})]
    const proxy = await startTinyproxy([443, 563])
    closers.push(() => proxy.close())
    const env = {...proxyEnv(proxy.url), HTTPS_PROXY: proxy.url, NODE_EXTRA_CA_CERTS: join(fixtures, 'cert.pem')}
    const ok = await runCli(['pull', plain.url, '-o', join(dir(), 'model.bin'), '--json'], env)
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal(JSON.parse(ok.stdout).size, content.length)
    assert.match(proxy.log(), new RegExp(`GET http://127\\.0\\.0\\.1:${new URL(plain.url).port}/`), 'tinyproxy forwarded the requests, as it does curl\'s')
    const r = await runCli(['pull', secure.url, '-o', join(dir(), 'model.bin')], env)
    assert.equal(r.code, 3, r.stderr)
    assert.match(r.stderr, /^Error: cannot download .*: the proxy refused the connection \(403\): .*many proxies open tunnels only to port 443: an internal server on another port belongs in NO_PROXY\)$/m)
    assert.equal(secure.requests.length, 0, 'nothing reached the server')
  })
})
