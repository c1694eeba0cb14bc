import assert from 'node:assert/strict'
import {rootCertificates} from 'node:tls'
import {once} from 'node:events'
import {createServer} from 'node:http'
import {createServer as createNetServer, type AddressInfo, type Socket} from 'node:net'
import {existsSync, lstatSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {spawn, spawnSync} from 'node:child_process'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {BIN, cliCacheHome, hasStack, runCli, startCli} from './support/cli.js'
import {makeContent, mirrors, sha256, startMirror} from './support/mirror-server.js'
import {tempDir} from './support/temp.js'
import {judgeLeftover} from '../src/lib/transfer/adopt.js'
import {aria2Control} from './support/aria2-control.js'
import {freePort} from './support/free-port.js'

const MiB = 1024 * 1024
const content = makeContent(32 * MiB, 11)
const digest = sha256(content)
const mirror = mirrors(content, after)

const dir = () => tempDir('cli')
/** A real aria2c, whose partial downloads pull takes over. */
const ARIA2C = spawnSync('aria2c', ['--version']).status === 0

async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe('mtune pull (CLI)', () => {
  it('--json prints one summary document and nothing else', async () => {
    const m = await mirror()
    const out = join(dir(), 'model.bin')
    const r = await runCli(['pull', m.url, '-o', out, '--json'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stderr, '')
    const summary = JSON.parse(r.stdout)
    for (const key of ['url', 'path', 'size', 'sha256', 'seconds', 'averageRate', 'connections', 'retries', 'bytesFetched', 'warnings']) {
      assert.ok(key in summary, `summary has ${key}`)
    }
    assert.equal(summary.path, out)
    assert.equal(summary.size, content.length)
    assert.equal(summary.sha256, digest)
    assert.ok(summary.bytesFetched >= content.length)
    assert.deepEqual(summary.warnings, [])
    // --debug with --json: the same one document on stdout, the details on stderr.
    const debug = await runCli(['pull', m.url, '-o', join(dir(), 'model.bin'), '--json', '--debug'])
    assert.equal(debug.code, 0, debug.stderr)
    assert.equal(JSON.parse(debug.stdout).sha256, digest)
    assert.match(debug.stderr, /range requests to http:\/\/127\.0\.0\.1:\d+: mtune's client, direct/)
  })

  it('warns when the server sends a web page for the file, on stderr and in --json', async () => {
    const m = await mirror({contentType: 'text/html; charset=utf-8'})
    const text = await runCli(['pull', m.url, '-o', join(dir(), 'model.gguf')])
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stderr, /answers with a web page \(text\/html; charset=utf-8\), not a file: .* Check the URL\n/)
    const doc = JSON.parse((await runCli(['pull', m.url, '-o', join(dir(), 'model.gguf'), '--json'])).stdout)
    assert.equal(doc.warnings.length, 1)
    assert.match(doc.warnings[0], /answers with a web page/)
    // Asked for a page, a page is no surprise.
    const page = await runCli(['pull', m.url, '-o', join(dir(), 'index.html')])
    assert.doesNotMatch(page.stderr, /web page/)
  })

  it('says when the server compresses the file though asked not to, and saves it as sent', async () => {
    const {gzipSync} = await import('node:zlib')
    const body = gzipSync(Buffer.from('{"hidden_size": 4096}\n'.repeat(200)))
    // A bucket object stored with Content-Encoding: gzip is served so, whatever was asked.
    const server = createServer((req, res) => void res.writeHead(200, {'content-encoding': 'gzip', 'content-length': body.length, 'content-type': 'application/json'}).end(body))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/config.json`
      const out = join(dir(), 'config.json')
      const r = await runCli(['pull', url, '-o', out])
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stderr, /config\.json sends the file compressed \(Content-Encoding: gzip\) though mtune asked for it as is: it is saved as sent, compressed/)
      assert.ok(readFileSync(out).equals(body), 'the bytes as sent, as curl and wget save them')
      const doc = JSON.parse((await runCli(['pull', url, '-o', join(dir(), 'config.json'), '--json'])).stdout)
      assert.match(doc.warnings.join('\n'), /Content-Encoding: gzip/)
    } finally {
      server.close()
    }
  })

  it('prints plain progress lines when piped, and the sha256 at the end', async () => {
    const m = await mirror({linkRate: 24 * MiB})
    const r = await runCli(['pull', m.url, '-o', join(dir(), 'model.bin')])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /^progress \d+\.\d% [\d.]+ [KM]iB\/32\.0 MiB [\d.]+ [KMG]?i?B\/s eta \S+ connections \d+$/m)
    assert.doesNotMatch(r.stderr + r.stdout, /\x1b\[/, 'no colour or cursor codes in a pipe')
    assert.match(r.stdout, new RegExp(`sha256 ${digest}`))
  })

  it('honours NO_COLOR even when colour is forced', async () => {
    const m = await mirror()
    const r = await runCli(['pull', m.url, '-o', join(dir(), 'model.bin')], {FORCE_COLOR: '3', NO_COLOR: '1'})
    assert.equal(r.code, 0)
    assert.doesNotMatch(r.stdout + r.stderr, /\x1b\[/)
  })

  it('resumes after SIGKILL with the right sha256 and little re-fetched', async () => {
    const m = await mirror({linkRate: 16 * MiB})
    const out = join(dir(), 'model.bin')
    const first = startCli(['pull', m.url, '-o', out, '--quiet'])
    await until(() => m.bytesSent >= 12 * MiB, '12 MiB to be sent')
    first.child.kill('SIGKILL')
    const killed = await first.done
    assert.equal(killed.signal, 'SIGKILL')
    assert.ok(existsSync(`${out}.part`) && existsSync(`${out}.part.journal`), 'part file and journal survive')
    assert.ok(existsSync(`${out}.part.lock`), 'and so does the lock of the killed pull')
    assert.ok(!existsSync(out))
    m.setOptions({linkRate: undefined})
    const again = await runCli(['pull', m.url, '-o', out, '--json'])
    assert.equal(again.code, 0, again.stderr)
    assert.ok(!existsSync(`${out}.part.lock`), "the dead pull's lock was taken over and released")
    const summary = JSON.parse(again.stdout)
    assert.equal(summary.sha256, digest)
    assert.ok(summary.resumedBytes >= 8 * MiB, `resumed from ${summary.resumedBytes}`)
    assert.equal(sha256(readFileSync(out)), digest)
    // What the server sent in both runs: the file plus what was in flight at the kill.
    assert.ok(m.bytesSent <= content.length * 1.1, `fetched ${(m.bytesSent / content.length).toFixed(3)} x the file`)
  })

  it("takes over aria2c's partial download in the file's place; one aria2c is still writing is left to it", {skip: ARIA2C ? false : 'aria2c is not installed: apt-get install -y aria2 (.ci/run does)'}, async () => {
    const m = await mirror({linkRate: 4 * MiB})
    const d = dir()
    const out = join(d, 'model.bin')
    const aria2 = spawn('aria2c', ['-x4', '-s4', '-k1M', '--auto-save-interval=1', '--console-log-level=error', '-d', d, '-o', 'model.bin', m.url], {stdio: 'ignore'})
    const stopped = once(aria2, 'exit')
    await until(() => m.bytesSent >= 2 * MiB, '2 MiB to reach aria2c')
    const busy = await runCli(['pull', m.url, '-o', out])
    assert.equal(busy.code, 2, busy.stderr)
    assert.match(busy.stderr, new RegExp(`model\\.bin is aria2c's partial download \\(.*model\\.bin\\.aria2 beside it\\), and process ${aria2.pid} still has it open`))
    // Stopped as a user stops it, with pieces finished: aria2c records them as it exits.
    await until(() => m.bytesSent >= 12 * MiB, '12 MiB to reach aria2c')
    aria2.kill('SIGINT')
    await stopped
    const kept = judgeLeftover({path: out, kind: 'aria2'}, content.length).ranges
    assert.ok(kept.total >= MiB, `aria2c finished ${kept.total} bytes`)
    const checked = await runCli(['verify', out, '--sha256', digest])
    assert.equal(checked.code, 4)
    assert.match(checked.stdout, /✗ model\.bin: interrupted \(aria2c's download of it was cut: mtune pull takes it over\)/, 'cut, not corrupt')
    // A list's plan says so too, with the size its dry run asked the server for.
    const list = join(dir(), 'list.txt')
    writeFileSync(list, `${m.url}\n`)
    const listed = await runCli(['pull', '-i', list, '-o', `${d}/`, '--dry-run'])
    assert.equal(listed.code, 0, listed.stderr)
    assert.match(listed.stderr, /: 1 file, 32\.0 MiB, 1 partly downloaded \([\d.]+ MiB on disk, resumed\) -> /)
    assert.match(listed.stderr, /^ {2}resumes +32\.0 MiB {2}model\.bin \([\d.]+ MiB on disk\)$/m)
    m.setOptions({linkRate: undefined})
    const asked = m.requests.length
    const r = await runCli(['pull', m.url, '-o', out, '--sha256', digest])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /taking over the partial download another client left: .* in .*model\.bin\n/)
    assert.equal(sha256(readFileSync(out)), digest)
    assert.deepEqual(readdirSync(d), ['model.bin'], 'no control file, no partial files')
    // What aria2c finished was not asked for again, but for the resume check's 64 KiB sample.
    const inKept = (start: number, end: number) => kept.toArray().reduce((n, k) => n + Math.max(0, Math.min(k.end, end) - Math.max(k.start, start)), 0)
    const again = m.requests.slice(asked).reduce((n, q) => {
      const [start, last] = /^bytes=(\d+)-(\d+)$/.exec(q.range ?? 'whole file')!.slice(1).map(Number)
      return n + inKept(start!, last! + 1)
    }, 0)
    assert.ok(again <= 64 * 1024, `${again} bytes aria2c had finished fetched again`)
    // A control file that is another file's: refused, said why; --force replaces the file, and the
    // control file goes with it (left, it would call the new file aria2c's).
    writeFileSync(`${out}.aria2`, aria2Control(content.length * 2, MiB, [0]))
    const other = await runCli(['pull', m.url, '-o', out])
    assert.equal(other.code, 2)
    assert.match(other.stderr, /which mtune does not take over: its control file is for a file of \d+ bytes, not this one's \d+; finish it with aria2c -c, or pull it again with --force/)
    assert.equal((await runCli(['pull', m.url, '-o', out, '--force'])).code, 0)
    assert.deepEqual(readdirSync(d), ['model.bin'])
  })

  it('--continue keeps a shorter file another tool left as the start (wget -c, curl -C -); a wrong one is caught and fetched again', async () => {
    const m = await mirror()
    const d = dir()
    const out = join(d, 'model.bin')
    writeFileSync(out, content.subarray(0, 10 * MiB))
    const r = await runCli(['pull', m.url, '-o', out, '--continue', '--sha256', digest])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /taking over the partial download another client left: 10\.0 MiB in .*model\.bin\n/)
    assert.equal(sha256(readFileSync(out)), digest)
    assert.deepEqual(readdirSync(d), ['model.bin'])
    // Every range asked starts after the start kept, but for the resume check's 64 KiB sample of its end.
    const starts = m.requests.map((q) => Number(/^bytes=(\d+)-/.exec(q.range ?? 'whole file')![1]))
    assert.ok(starts.every((s) => s >= 10 * MiB - 64 * 1024), `ranges from ${starts.join(', ')}`)
    // A start that is not the file's (an older version, a crash's garbage): the sample sees it.
    const bad = Buffer.from(content.subarray(0, 4 * MiB))
    bad.fill(7, bad.length - 1000)
    writeFileSync(out, bad)
    const again = await runCli(['pull', m.url, '-o', out, '--continue'])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stderr, /the bytes taken over from .*model\.bin are not the server's \(at \d+\): starting over/)
    assert.equal(sha256(readFileSync(out)), digest)
    // As long as the file: not a start, and the usual line (hashed with --sha256: found complete).
    // In a home with no record of the pulls above (which would keep the file: a re-run).
    const complete = await runCli(['pull', m.url, '-o', out, '--continue'], {XDG_CACHE_HOME: dir()})
    assert.equal(complete.code, 2)
    assert.match(complete.stderr, /as large as the server's file/)
    assert.equal((await runCli(['pull', m.url, '-o', out, '--continue', '--sha256', digest])).code, 0)
    // Not for model sources or lists, which take over what their clients left by themselves.
    assert.match((await runCli(['pull', 'hf://acme/tiny', '--continue'])).stderr, /--continue applies to URLs; a hf pull takes over by itself/)
    assert.match((await runCli(['pull', '-i', join(d, 'list.txt'), '--continue'])).stderr, /--continue does not apply to -i/)
  })

  it('stops on Ctrl-C with exit 130 and a line saying the same command resumes', async () => {
    const m = await mirror({linkRate: 16 * MiB})
    const out = join(dir(), 'model.bin')
    const run = startCli(['pull', m.url, '-o', out])
    await until(() => m.bytesSent >= 4 * MiB, '4 MiB to be sent')
    run.child.kill('SIGINT')
    const r = await run.done
    assert.equal(r.code, 130)
    assert.match(r.stderr, /^Error: interrupted: run the same command again to resume$/m)
    assert.ok(!hasStack(r.stderr))
    m.setOptions({linkRate: undefined})
    const again = await runCli(['pull', m.url, '-o', out])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stderr, /resuming: [\d.]+ MiB of 32\.0 MiB already on disk/)
    assert.equal(sha256(readFileSync(out)), digest)
  })

  it('a second pull to the same file waits for the first, then finds it complete', async () => {
    // The first crawls until the others are seen waiting on it, then finishes.
    const m = await mirror({linkRate: 1 * MiB})
    const out = join(dir(), 'model.bin')
    const first = startCli(['pull', m.url, '-o', out, '--quiet'])
    await until(() => m.bytesSent >= 1 * MiB, '1 MiB to be sent')
    // With a digest, and without one (the same command run twice, or by hosts sharing the disk):
    // the file the first put in place is this URL's. Another URL to the same path is not taken for it.
    const waiters = [[m.url, '--sha256', digest], [m.url], [`${m.url}?other`]].map(([url, ...extra]) => startCli(['pull', url, '-o', out, ...extra]))
    const said = waiters.map(({child}) => {
      let text = ''
      child.stderr!.on('data', (d) => (text += d))
      return () => text
    })
    await until(() => said.every((s) => s().includes('waiting for another mtune')), 'the other three to wait')
    m.setOptions({linkRate: 64 * MiB})
    const [a, b, c, d] = await Promise.all([first.done, ...waiters.map((w) => w.done)])
    assert.equal(a.code, 0, a.stderr)
    assert.equal(b.code, 0, b.stderr)
    assert.match(b.stderr, new RegExp(`waiting for another mtune \\(pid \\d+\\) that is pulling to ${out}`))
    assert.match(b.stdout, new RegExp(`^✓ ${out} is complete: another mtune pulled it from this URL while this one waited \\(32\\.0 MiB\\)\n  sha256 ${digest} \\(verified\\)$`, 'm'))
    assert.equal(c.code, 0, c.stderr)
    assert.match(c.stdout, new RegExp(`^✓ ${out} is complete: another mtune pulled it from this URL while this one waited \\(32\\.0 MiB\\)\n  sha256 ${digest}$`, 'm'))
    assert.equal(d.code, 2, d.stderr)
    assert.match(d.stderr, /already exists, as large as the server's file/)
    assert.equal(sha256(readFileSync(out)), digest)
    // Once, and the first answers of the two without a digest, asked before they waited (4 MiB at most each).
    assert.ok(m.bytesSent <= content.length * 1.1 + 8 * MiB, `fetched ${(m.bytesSent / content.length).toFixed(3)} x the file: once`)
    for (const left of ['.part', '.part.journal', '.part.lock']) assert.ok(!existsSync(out + left), `no ${left} left`)
  })

  it('says an existing file with the expected digest is complete, and exits 0', async () => {
    const m = await mirror()
    const out = join(dir(), 'model.bin')
    writeFileSync(out, content)
    const r = await runCli(['pull', m.url, '-o', out, '--sha256', digest])
    assert.equal(r.code, 0)
    assert.match(r.stdout, /is already complete/)
  })

  describe('bad input: one line, a documented exit code, no stack trace', () => {
    const cases: Array<[string, () => Promise<string[]>, number, RegExp]> = [
      ['a malformed source', async () => ['pull', 'not a url'], 2, /invalid source "not a url": give a URL \(https:\/\/\.\.\.\), hf:\/\/ORG\/NAME/],
      ['an unsupported scheme', async () => ['pull', 'ftp://example.com/x.bin'], 2, /unsupported scheme "ftp".*use https:\/\/, hf:\/\/, ollama:\/\/ or modelscope:\/\//],
      ['a URL-only flag with a model source', async () => ['pull', 'hf://acme/x', '-o', '/tmp/x'], 2, /--output applies to URLs only/],
      ['a bad size', async () => ['pull', 'http://127.0.0.1:9/x', '--chunk-size', '12Q'], 2, /invalid --chunk-size "12Q"/],
      ['a bad rate', async () => ['pull', 'http://127.0.0.1:9/x', '--limit-rate', 'fast'], 2, /invalid --limit-rate "fast"/],
      ['a bad digest', async () => ['pull', 'http://127.0.0.1:9/x', '--sha256', 'abc'], 2, /invalid sha256 "abc"/],
      ['standard output as the destination', async () => ['pull', 'http://127.0.0.1:9/x', '-o', '-'], 2, /-o - \(standard output\) is not supported.*give a file or directory path/],
      // "$DIR" unset in a script: the current directory (or, for --local-dir, the cache) in silence.
      ['an empty path', async () => ['pull', 'hf://acme/x', '--local-dir', ''], 2, /^Error: --local-dir is empty \(a variable not set\?\): give a path, or leave the flag out$/m],
      ['an empty path, any command', async () => ['cache', 'status', '--dir', ''], 2, /^Error: --dir is empty/m],
      ['an empty value: a cap that would have been left off', async () => ['pull', 'http://127.0.0.1:9/x', '--limit-rate', ''], 2, /^Error: --limit-rate is empty \(a variable not set\?\): give a value, or leave the flag out$/m],
      ['an empty glob among others', async () => ['pull', 'hf://acme/x', '--include', '*.json', '--include', ''], 2, /^Error: --include is empty/m],
      // statfs says /proc has no free blocks: it said "not enough space", as if a disk were full.
      ['a kernel filesystem as the destination', async () => ['pull', 'http://127.0.0.1:9/x', '-o', '/proc/mtune-test/x.bin'], 5, /^Error: cannot write to \/proc: it is a kernel filesystem, not a disk; choose another -o$/m],
      [
        'a destination under a file',
        async () => {
          const file = join(dir(), 'file')
          writeFileSync(file, 'x')
          return ['pull', 'http://127.0.0.1:9/x', '-o', join(file, 'x.bin')]
        },
        5,
        /cannot write .*: \S*file is a file, not a directory; choose another -o/,
      ],
      [
        'an existing file without --force',
        async () => {
          const m = await mirror()
          const out = join(dir(), 'model.bin')
          writeFileSync(out, 'old')
          return ['pull', m.url, '-o', out]
        },
        2,
        /already exists, 3 of the server's \d+ bytes: a download another tool cut short \(wget, curl\)\? --continue keeps it as the file's start; --force pulls it again/,
      ],
      ['a missing file (404)', async () => ['pull', (await mirror({fault: () => ({status: 404})})).url, '-o', join(dir(), 'x')], 3, /not found \(404\)/],
      [
        'a digest mismatch',
        async () => ['pull', (await mirror()).url, '-o', join(dir(), 'x.bin'), '--sha256', '0'.repeat(64)],
        4,
        /sha256 mismatch/,
      ],
    ]
    for (const [name, args, code, message] of cases) {
      it(name, async () => {
        const r = await runCli(await args())
        assert.equal(r.code, code, r.stderr)
        const errors = r.stderr.split('\n').filter((l) => l.startsWith('Error:'))
        assert.equal(errors.length, 1, r.stderr)
        assert.match(errors[0], message)
        assert.ok(!hasStack(r.stderr), r.stderr)
      })
    }

    it('a flag out of range is refused by the parser with exit 2', async () => {
      const r = await runCli(['pull', 'http://127.0.0.1:9/x', '-c', '0'])
      assert.equal(r.code, 2)
      assert.match(r.stderr, /greater than or equal to 1/)
    })

    it("the parser's errors are one line too, pointing at --help, and JSON with --json", async () => {
      const cases: [string[], RegExp][] = [
        [['pull'], /^Error: missing SOURCE \(.*\); see mtune pull --help$/],
        [['pull', 'http://127.0.0.1:9/x', '--no-such-flag'], /^Error: Nonexistent flag: --no-such-flag; see mtune pull --help$/],
        // A typo of one of the command's own flags (or a global one): the nearest.
        [['pull', 'http://127.0.0.1:9/x', '--max-connection', '8'], /^Error: Nonexistent flag: --max-connection; did you mean --max-connections\?; see mtune pull --help$/],
        [['verify', 'x', '--repiar'], /^Error: Nonexistent flag: --repiar; did you mean --repair\?; see mtune verify --help$/],
        [['doctor', '--jsn'], /^Error: Nonexistent flag: --jsn; did you mean --json\?; see mtune doctor --help$/],
        // The start of one flag is that flag (it was "--auto", two letters off "--out").
        [['pull', 'http://127.0.0.1:9/x', '--out', 'x'], /^Error: Nonexistent flag: --out; did you mean --output\?; see mtune pull --help$/],
        [['pull', 'http://127.0.0.1:9/x', '-c', '0'], /^Error: Parsing --connections: Expected an integer .*; see mtune pull --help$/],
        // Another tool's flag, typed from habit: what mtune has for it, on the same line.
        [['pull', 'http://127.0.0.1:9/x', '-x', '16'], /^Error: Nonexistent flag: -x; connections are -c N \(to start with; the count adapts\) and --max-connections N; see mtune pull --help$/],
        [['pull', 'http://127.0.0.1:9/x', '--checksum=sha-256=ab'], /^Error: Nonexistent flag: --checksum=sha-256=ab; the digest is --sha256 HEX \(aria2c's --checksum=sha-256=HEX\); see mtune pull --help$/],
        [['pull', 'hf://a/b', '--revision', 'v2'], /^Error: Nonexistent flag: --revision; the revision goes in the source: hf:\/\/ORG\/NAME@REVISION; see mtune pull --help$/],
        // oclif's own wording is "--force=true cannot also be provided when using --continue".
        [['pull', 'http://127.0.0.1:9/x', '--continue', '--force'], /^Error: --force and --continue cannot be used together; see mtune pull --help$/],
        [['doctor', '--size', '1G', '--model', 'hf://a/b'], /^Error: --model and --size cannot be used together; see mtune doctor --help$/],
        // mtune's -c typed as wget's and aria2c's continue: its value does not parse.
        [['pull', '-c', 'http://127.0.0.1:9/x'], /^Error: Parsing --connections: Expected an integer but received: http:\/\/127\.0\.0\.1:9\/x; -c N is mtune's connection count; wget's -c \(continue\) is --continue, for a file another tool cut short \(mtune resumes its own, and aria2c's, by itself\); see mtune pull --help$/],
        [['pull', 'http://127.0.0.1:9/x', '-c'], /^Error: Flag --connections expects a value; -c N is mtune's connection count; .*; see mtune pull --help$/],
        [['pull', 'http://127.0.0.1:9/x', '--connections', 'x'], /^Error: Parsing --connections: Expected an integer but received: x; see mtune pull --help$/],
        [['verify', '-c', 'SHA256SUMS'], /^Error: Nonexistent flag: -c; mtune verify SHA256SUMS \(or its directory\) checks what it lists, as sha256sum -c does; see mtune verify --help$/],
        // Ignored, it would read as curl -k.
        [['pull', 'https://127.0.0.1:9/x', '--insecure'], /^Error: --insecure applies to ollama:\/\/ \(plain http to a registry\); mtune never skips TLS verification: trust the server's CA/],
        [['pull', 'http://127.0.0.1:9/x', '--chunk-size'], /^Error: Flag --chunk-size expects a value; see mtune pull --help$/],
        // A mistyped command: the nearest one (a command under a topic too), or the list.
        [['pul', 'http://127.0.0.1:9/x'], /^Error: unknown command "pul": did you mean mtune pull\? mtune --help lists the commands$/],
        [['cache', 'sevre', '--dir', '/tmp/x'], /^Error: unknown command "cache sevre": did you mean mtune cache serve\? mtune --help/],
        [['frobnicate'], /^Error: unknown command "frobnicate": mtune --help lists the commands$/],
        // Sharing "cache " with "cache stop" made "foo" a typo of "stop": the differing words are judged.
        [['cache', 'foo'], /^Error: unknown command "cache foo": mtune --help lists the commands$/],
        [['help', 'pul'], /^Error: unknown command "pul": did you mean mtune pull\? mtune --help lists the commands$/],
      ]
      for (const [argv, line] of cases) {
        const r = await runCli(argv)
        assert.equal(r.code, 2, argv.join(' '))
        assert.match(r.stderr.trim(), line)
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
      }
      // `mtune help pull`, as git and npm take it, is `mtune pull --help`.
      const help = await runCli(['help', 'pull'])
      assert.equal(help.code, 0, help.stderr)
      assert.equal(help.stdout, (await runCli(['pull', '--help'])).stdout)
      const json = await runCli(['pull', 'http://127.0.0.1:9/x', '-c', '0', '--json'])
      assert.equal(json.code, 2)
      assert.equal(JSON.parse(json.stdout).error.exitCode, 2)
    })

    it('--debug adds the stack trace', async () => {
      const r = await runCli(['pull', 'not a url', '--debug'])
      assert.equal(r.code, 2)
      assert.ok(hasStack(r.stderr), r.stderr)
    })

    it('--json reports the error as JSON with the same exit code', async () => {
      const r = await runCli(['pull', 'ftp://x/y', '--json'])
      assert.equal(r.code, 2)
      assert.deepEqual(JSON.parse(r.stdout).error.code, 'bad-scheme')
    })
  })

  it("checks a plain URL's file against the sha256 the server publishes (the Hub's X-Linked-Etag on its redirect)", async () => {
    const m = await mirror()
    // A hub's answer for an LFS file: a redirect to its CDN, with the file's sha256.
    let published = digest
    const hub = createServer((_req, res) => res.writeHead(302, {location: m.url, 'x-linked-etag': `"${published}"`, 'x-linked-size': String(content.length)}).end())
    hub.listen(0, '127.0.0.1')
    await once(hub, 'listening')
    const url = `http://127.0.0.1:${(hub.address() as AddressInfo).port}/org/m/resolve/main/model.bin`
    try {
      const first = join(dir(), 'model.bin')
      const ok = await runCli(['pull', url, '-o', first, '--json'])
      assert.equal(ok.code, 0, ok.stderr)
      assert.deepEqual([JSON.parse(ok.stdout).sha256, JSON.parse(ok.stdout).verified], [digest, true])
      // Pulled again onto itself: the published digest recognises it, as --sha256 would.
      const again = await runCli(['pull', url, '-o', first, '--json'])
      assert.equal(again.code, 0, again.stderr)
      assert.equal(JSON.parse(again.stdout).alreadyComplete, true)
      published = '2'.repeat(64)
      const out = join(dir(), 'model.bin')
      const bad = await runCli(['pull', url, '-o', out])
      assert.equal(bad.code, 4, bad.stderr)
      assert.match(bad.stderr, new RegExp(`^Error: sha256 mismatch for .*model\\.bin: expected ${published} \\(from the server's X-Linked-Etag\\), got ${digest}; the file was removed$`, 'm'))
      assert.ok(!existsSync(out))
      // --sha256 is the user's word: it is what the file is checked against, with a warning.
      const given = await runCli(['pull', url, '-o', out, '--sha256', digest])
      assert.equal(given.code, 0, given.stderr)
      assert.match(given.stderr, new RegExp(`the server publishes sha256 ${published} for this file \\(X-Linked-Etag\\), not the one expected \\(${digest}\\): the file is checked against the one expected`))
    } finally {
      hub.close()
    }
  })

  it('refuses a destination that is no file (a pipe, a device, a link to a descriptor such as /dev/stdout): the rename would replace it', async () => {
    const m = await mirror()
    const d = dir()
    const fifo = join(d, 'fifo')
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0)
    const descriptor = join(d, 'stdout')
    symlinkSync('/proc/self/fd/1', descriptor)
    for (const [out, kind] of [[fifo, 'a pipe'], [descriptor, "one of this process's file descriptors"]] as const) {
      const r = await runCli(['pull', m.url, '-o', out, '--force'])
      assert.equal(r.code, 2, r.stderr)
      assert.equal(r.stderr.trim(), `Error: ${out} is ${kind}, not a file: mtune writes the download beside it and renames it into place, which would replace it; give a file or directory with -o (to measure a download without keeping it: mtune bench --mirror URL)`)
    }
    assert.ok(lstatSync(fifo).isFIFO() && lstatSync(descriptor).isSymbolicLink(), 'both left as they were')
    assert.deepEqual(readdirSync(d).sort(), ['fifo', 'stdout'], 'no part file either')
    assert.equal(m.requests.length, 0, 'refused before asking the server')
  })

  it('makes a missing destination directory, as aria2c -d and wget -P do, once the server has answered', async () => {
    const m = await mirror()
    const d = dir()
    const named = await runCli(['pull', m.url, '-o', join(d, 'models', 'llama') + '/'])
    assert.equal(named.code, 0, named.stderr)
    assert.ok(readFileSync(join(d, 'models', 'llama', 'model.bin')).equals(content))
    const file = await runCli(['pull', m.url, '-o', join(d, 'a', 'b', 'weights.bin')])
    assert.equal(file.code, 0, file.stderr)
    assert.deepEqual(readdirSync(join(d, 'a', 'b')), ['weights.bin'], 'no lock or partial file left behind')
    // A pull that fails leaves no empty directory behind.
    const failed = await runCli(['pull', `http://127.0.0.1:${await freePort()}/x.bin`, '-o', join(d, 'never') + '/'])
    assert.equal(failed.code, 3, failed.stderr)
    assert.ok(!existsSync(join(d, 'never')))
  })

  it('pulls an empty file: an empty destination, the empty digest, no partial files', async () => {
    const m = await mirror({content: Buffer.alloc(0), etag: true})
    const d = dir()
    const out = join(d, 'empty.bin')
    const r = await runCli(['pull', m.url, '-o', out, '--sha256', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /empty\.bin {2}0 B in \S+ \(an empty file\)\n {2}sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 \(verified\)/)
    assert.equal(statSync(out).size, 0)
    assert.deepEqual(readdirSync(d), ['empty.bin'])
  })

  it('refuses a file name too long for the partial files beside it, before writing anything', async () => {
    const long = `${'m'.repeat(240)}.gguf`
    const m = await mirror({name: long})
    const d = dir()
    const named = await runCli(['pull', m.url, '-o', `${d}/`])
    assert.equal(named.code, 2, named.stderr)
    assert.equal(named.stderr.trim(), 'Error: the file name "mmmmmmmmmmmmmmmmmmmm...mmmmmmm.gguf" is 245 bytes; with the partial files beside it, names of at most 238 bytes fit: give a shorter one with -o PATH')
    const given = await runCli(['pull', m.url, '-o', join(d, 'é'.repeat(120))])
    assert.equal(given.code, 2, given.stderr)
    assert.match(given.stderr, /is 240 bytes; .* at most 238 bytes fit/)
    assert.deepEqual(readdirSync(d), [], 'nothing written')
    const fits = await runCli(['pull', m.url, '-o', join(d, 'x'.repeat(238))])
    assert.equal(fits.code, 0, fits.stderr)
  })

  it('--dry-run of a URL says its size, where it goes and what is there already, from one byte, and writes nothing', async () => {
    const m = await mirror({linkRate: 16 * MiB})
    const d = dir()
    const fresh = await runCli(['pull', m.url, '-o', `${d}/`, '--dry-run', '--json'])
    assert.equal(fresh.code, 0, fresh.stderr)
    const plan = JSON.parse(fresh.stdout)
    const path = join(d, m.url.split('/').pop()!)
    assert.deepEqual([plan.dryRun, plan.size, plan.ranges, plan.path, plan.onDisk], [true, content.length, true, path, {state: 'nothing'}])
    assert.ok(plan.freeBytes > 0)
    assert.deepEqual(readdirSync(d), [], 'nothing written')
    assert.ok(m.bytesSent < 64 * 1024, `${m.bytesSent} bytes sent for a dry run`)
    // Cut: what it holds is said, and resumed; the dry run leaves the part file as it was.
    const first = startCli(['pull', m.url, '-o', `${d}/`, '--quiet'])
    await until(() => m.bytesSent >= 12 * MiB, '12 MiB to be sent')
    first.child.kill('SIGKILL')
    await first.done
    const before = readdirSync(d).sort()
    const cut = await runCli(['pull', m.url, '-o', `${d}/`, '--dry-run'])
    assert.equal(cut.code, 0, cut.stderr)
    assert.match(cut.stderr, new RegExp(`: 32\\.0 MiB, ranges answered -> ${path.replace(/[.]/g, '\\.')}\n  [\\d.]+ MiB of it on disk from a pull that was cut: resumed\n.*free there\n  nothing written \\(--dry-run\\)`))
    assert.deepEqual(readdirSync(d).sort(), before)
    m.setOptions({linkRate: undefined})
    assert.equal((await runCli(['pull', m.url, '-o', `${d}/`, '--quiet'])).code, 0)
    const there = await runCli(['pull', m.url, '-o', `${d}/`, '--dry-run'])
    assert.match(there.stderr, /a file of 32\.0 MiB is there, pulled from this URL by mtune on \d{4}-\d\d-\d\d: kept if it still has that pull's sha256/)
    assert.match((await runCli(['pull', m.url, '-o', join(d, 'other.bin'), '--dry-run', '--force'])).stderr, /-> .*other\.bin\n.*free there/)
    writeFileSync(join(d, 'other.bin'), 'x')
    assert.match((await runCli(['pull', m.url, '-o', join(d, 'other.bin'), '--dry-run', '--force'])).stderr, /a file of 1 B is there: replaced \(--force\)/)
    const missing = await runCli(['pull', m.url.replace(/\/file\/.*$/, '/elsewhere/x.bin'), '-o', `${d}/`, '--dry-run'])
    assert.equal(missing.code, 3, missing.stderr)
    assert.match(missing.stderr, /^Error: cannot download .*: not found \(404\)/)
  })

  it('leaves the destination untouched by a failed pull', async () => {
    const m = await mirror()
    const out = join(dir(), 'model.bin')
    const r = await runCli(['pull', m.url, '-o', out, '--sha256', '1'.repeat(64)])
    assert.equal(r.code, 4)
    assert.ok(!existsSync(out))
  })
})

describe('mtune pull -i FILE (a list of URLs)', () => {
  it('pulls every URL of the list into one directory, named and checked as the list says; a second run keeps what matches', async () => {
    const small = makeContent(3 * MiB, 12)
    const a = await mirror({name: 'shard-1.bin'})
    const b = await startMirror({content: small, name: 'shard-2.bin'})
    after(() => b.close())
    const d = dir()
    const list = join(d, 'urls.txt')
    writeFileSync(list, [`# the model's shards`, a.url, `  checksum=sha-256=${digest}`, '', `${sha256(small)}  ${b.url}`, a.url, '  out=copy.bin', ''].join('\n'))
    const out = join(d, 'model')
    const r = await runCli(['pull', '-i', list, '-o', `${out}/`, '--json'])
    assert.equal(r.code, 0, r.stderr)
    const doc = JSON.parse(r.stdout)
    assert.deepEqual(doc.files.map((f: {name: string; sha256?: string}) => [f.name, f.sha256 ?? null]), [['shard-1.bin', digest], ['shard-2.bin', sha256(small)], ['copy.bin', null]])
    assert.deepEqual(readdirSync(out).sort(), ['copy.bin', 'shard-1.bin', 'shard-2.bin'])
    assert.ok(readFileSync(join(out, 'shard-2.bin')).equals(small))
    assert.ok(readFileSync(join(out, 'copy.bin')).equals(content))
    assert.equal(doc.results.find((x: {name: string}) => x.name === 'copy.bin').sha256, digest, 'hashed all the same')
    // The same list saved by a Windows editor (a byte order mark, CRLF): read as it is meant.
    const windows = join(d, 'urls-windows.txt')
    writeFileSync(windows, `\uFEFF${a.url}\r\n  out=win.bin\r\n`)
    const dry = await runCli(['pull', '-i', windows, '-o', `${out}/`, '--dry-run', '--json'])
    assert.equal(dry.code, 0, dry.stderr)
    assert.deepEqual(JSON.parse(dry.stdout).files.map((f: {name: string; size: number}) => [f.name, f.size]), [['win.bin', content.length]], 'its size asked of its server')
    // A URL that does not answer is said, and the dry run goes on with the others, as the pull would.
    writeFileSync(windows, `${b.url}\n${a.url.replace(/\/file\/.*$/, '/elsewhere/gone.bin')}\n`)
    const gone = await runCli(['pull', '-i', windows, '-o', join(d, 'fresh') + '/', '--dry-run'])
    assert.equal(gone.code, 0, gone.stderr)
    assert.match(gone.stderr, /to pull +3\.0 MiB {2}shard-2\.bin\n {2}to pull +\? {2}gone\.bin\n! gone\.bin: http:\/\/127\.0\.0\.1:\d+\/elsewhere\/gone\.bin did not answer as a file \(not found \(404\)/)
    assert.ok(!existsSync(join(d, 'fresh')), 'nothing written')
    // Again: the files with a digest that match are kept; one without is refused, as a plain pull refuses it.
    // A re-run: copy.bin too is what the first run pulled from its URL (mtune's record).
    const rerun = await runCli(['pull', '-i', list, '-o', out])
    assert.equal(rerun.code, 0, rerun.stderr)
    assert.match(rerun.stdout, /already complete, 3 files present \(their digests match\)/)
    // Another user's run, with no record of it: nothing to check it against.
    const elsewhere = {XDG_CACHE_HOME: dir()}
    const again = await runCli(['pull', '-i', list, '-o', out], elsewhere)
    assert.deepEqual([again.code, again.stderr.trim()], [2, `Error: copy.bin already exists in ${out} with nothing to check it against: --force replaces it (or give checksum=sha-256=HEX in the list, and a file that matches is kept)`])
    const forced = await runCli(['pull', '-i', list, '-o', out, '--force'], elsewhere)
    assert.equal(forced.code, 0, forced.stderr)
    assert.match(forced.stdout, /✓ \S*urls\.txt \(3 URLs\): 1 pulled \(32\.0 MiB in .*\), 2 already present \(their digests match\) -> /)
    // A digest the file does not have: exit 4, nothing kept under that name.
    writeFileSync(list, `${b.url}\n  checksum=sha-256=${'0'.repeat(64)}\n  out=bad.bin\n`)
    const bad = await runCli(['pull', '-i', list, '-o', out])
    assert.equal(bad.code, 4, bad.stderr)
    assert.ok(!existsSync(join(out, 'bad.bin')))
  })

  it('goes on with the other files when one fails on its own, as aria2c -i and wget -i do, and says which failed', async () => {
    const small = makeContent(2 * MiB, 14)
    const good = await startMirror({content: small, name: 'good.bin'})
    after(() => good.close())
    const d = dir()
    const dead = `http://127.0.0.1:${await freePort()}/gone.bin`
    writeFileSync(join(d, 'urls.txt'), [dead, good.url, `${good.url}?copy`, '  out=copy.bin', `${good.url}?bad`, `  checksum=sha-256=${'0'.repeat(64)}`, '  out=bad.bin', ''].join('\n'))
    const r = await runCli(['pull', '-i', join(d, 'urls.txt'), '-o', join(d, 'out'), '--retries', '1'])
    assert.equal(r.code, 3, 'the first failure\'s exit code: the server')
    const said = r.stderr.trim().split('\n').at(-1)!
    assert.match(said, /^Error: 2 files failed \(2 pulled and in place\): /)
    assert.match(said, /gone\.bin: cannot download http:\/\/127\.0\.0\.1:\d+\/gone\.bin: connection refused/)
    assert.match(said, /bad\.bin: sha256 mismatch/)
    assert.match(r.stderr, /gone\.bin: .*going on with the other files/)
    assert.deepEqual(readdirSync(join(d, 'out')).filter((n) => !n.endsWith('.lock')).sort(), ['copy.bin', 'good.bin'])
    assert.ok(readFileSync(join(d, 'out', 'copy.bin')).equals(small))
    // With --json, the error document says what was pulled and what failed, so that a script can retry those.
    const j = await runCli(['pull', '-i', join(d, 'urls.txt'), '-o', join(d, 'json'), '--retries', '1', '--json'])
    assert.equal(j.code, 3, j.stderr)
    const doc = JSON.parse(j.stdout)
    assert.equal(doc.error.exitCode, 3)
    assert.deepEqual(doc.results.map((x: {name: string; path: string; sha256: string}) => [x.name, x.path, x.sha256]).sort(), [
      ['copy.bin', join(d, 'json', 'copy.bin'), sha256(small)],
      ['good.bin', join(d, 'json', 'good.bin'), sha256(small)],
    ])
    assert.deepEqual(doc.failed.map((x: {name: string; url: string; code: string; exitCode: number}) => [x.name, x.url, x.code, x.exitCode]), [
      ['gone.bin', dead, 'remote', 3],
      ['bad.bin', `${good.url}?bad`, 'digest-mismatch', 4],
    ])
    assert.match(doc.failed[1].message, /sha256 mismatch/)
  })

  it("shows a list's progress against the sum of its files' sizes, once their servers have said them", async () => {
    // A list gives no sizes: each file's comes with its first answer. Before, the total stayed 0 B.
    const slow = await startMirror({content: makeContent(4 * MiB, 15), name: 'one.bin', linkRate: 4 * MiB})
    after(() => slow.close())
    const d = dir()
    writeFileSync(join(d, 'urls.txt'), `${slow.url}\n${slow.url}?again\n  out=two.bin\n`)
    const r = await runCli(['pull', '-i', join(d, 'urls.txt'), '-o', join(d, 'out')], {MTUNE_PROGRESS_INTERVAL_MS: '100'})
    assert.equal(r.code, 0, r.stderr)
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('progress '))
    assert.ok(lines.some((l) => /^progress [\d.]+% [\d.]+ [KM]?i?B\/8\.0 MiB /.test(l)), lines.join('\n'))
    assert.deepEqual(lines.filter((l) => /\/0 B /.test(l)), [], 'never a total of nothing')
  })

  it('through a cache that fails part way, the list is pulled directly, keeping the files that came through it', async () => {
    const small = makeContent(2 * MiB, 13)
    const origin = await startMirror({content: small, name: 'b.bin', files: new Map([['a.bin', content]])})
    after(() => origin.close())
    const d = dir()
    // A cache that serves a.bin and fails b.bin, once a.bin is in place (so that the failure comes
    // after it, whatever the order): answers as an mtune cache, with the origin among its origins.
    const cache = createServer(async (req, res) => {
      if (req.url === '/-/mtune') return void res.writeHead(200, {'content-type': 'application/json'}).end(JSON.stringify({service: 'mtune cache', origins: {files: `${origin.origin}/file`}}))
      if (req.url !== '/-/origin/files/a.bin') {
        while (!existsSync(join(d, 'out', 'a.bin'))) await new Promise((r) => setTimeout(r, 20))
        return void res.writeHead(502).end()
      }
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
      if (!m) return void res.writeHead(200, {'content-length': String(content.length), 'accept-ranges': 'bytes'}).end(content)
      const start = Number(m[1])
      const end = m[2] ? Math.min(Number(m[2]), content.length - 1) : content.length - 1
      res.writeHead(206, {'content-range': `bytes ${start}-${end}/${content.length}`, 'content-length': String(end - start + 1), 'accept-ranges': 'bytes'}).end(content.subarray(start, end + 1))
    }).listen(0, '127.0.0.1')
    await once(cache, 'listening')
    after(() => cache.close())
    writeFileSync(join(d, 'urls.txt'), `${origin.origin}/file/a.bin\n${origin.url}\n`)
    const r = await runCli(['pull', '-i', join(d, 'urls.txt'), '-o', join(d, 'out'), '--json', '--retries', '1'], {MTUNE_CACHE: `http://127.0.0.1:${(cache.address() as AddressInfo).port}`})
    assert.equal(r.code, 0, r.stderr)
    const doc = JSON.parse(r.stdout)
    assert.equal(doc.via, 'origin')
    assert.match(doc.warnings.join('\n'), /failed .*: pulling the list directly; what is on disk is kept/)
    assert.ok(readFileSync(join(d, 'out', 'a.bin')).equals(content))
    assert.ok(readFileSync(join(d, 'out', 'b.bin')).equals(small))
    assert.ok(origin.bytesSent < content.length, `a.bin came through the cache once and was kept: the origin sent ${origin.bytesSent}`)
  })

  it('says which line of a list is wrong, and what -i does not combine with', async () => {
    const d = dir()
    const cases: Array<[string, string]> = [
      ['http://h/a.bin\n  mirror=http://g/a.bin\n', 'line 2: mirror= is not an option mtune reads here: out=NAME and checksum=sha-256=HEX are'],
      ['  out=x\n', 'line 1: "out=x" is not an option of a URL above it'],
      ['http://h/a.bin\n  checksum=md5=abc\n', 'line 2: checksum=md5=abc: give checksum=sha-256=HEX (64 hex digits)'],
      ['hf://org/name\n', 'line 1: hf://org/name: only http:// and https:// URLs are pulled from a list'],
      ['not a url\n', 'line 1: "not a url" is not a URL'],
      ['http://h/a.bin\nhttp://g/a.bin\n', "line 2: a.bin is already the name of line 1's file: give one of them another with out=NAME"],
      ['http://h/a.bin\n\nhttp://h/a.bin\n', 'line 3: the same URL as line 1: list each file once'],
      ['http://h/\n', 'line 1: http://h/ names no file: give it one with an indented out=NAME line below it'],
      ['http://h/a.bin\n  out=../a.bin\n', 'line 1: the name "../a.bin" would leave'],
      ['# nothing\n\n', 'lists no URL: one per line (# for comments)'],
    ]
    for (const [text, said] of cases) {
      const list = join(d, 'list.txt')
      writeFileSync(list, text)
      const r = await runCli(['pull', '-i', list, '-o', join(d, 'out')])
      assert.equal(r.code, 2, text)
      assert.ok(r.stderr.includes(said), `${text}: ${r.stderr}`)
    }
    assert.match((await runCli(['pull', '-i', join(d, 'list.txt'), 'http://h/b.bin'])).stderr, /gives the URLs: put http:\/\/h\/b\.bin in it, or pull it alone without -i/)
    assert.match((await runCli(['pull', '-i', join(d, 'list.txt'), '--sha256', '1'.repeat(64)])).stderr, /--sha256 does not apply to -i: give each URL its digest in the list/)
    // The same checks of sizes and flags as a single pull, before the list is read.
    for (const [flags, said] of [
      [['--chunk-size', '1K'], /^Error: --chunk-size 1K is too small: use 64K or more$/],
      [['--limit-rate', '0'], /^Error: --limit-rate must be more than 0$/],
      [['--tune'], /^Error: --tune does not apply to -i: a list holds plain URLs$/],
    ] as const) {
      const r = await runCli(['pull', '-i', join(d, 'list.txt'), ...flags])
      assert.equal(r.code, 2, flags.join(' '))
      assert.match(r.stderr.trim(), said)
    }
    assert.match((await runCli(['pull', '-i', join(d, 'nope.txt')])).stderr, /cannot read .*nope\.txt \(ENOENT\): give the list's path, or - for standard input/)
    assert.match((await runCli(['pull'])).stderr.trim(), /^Error: missing SOURCE \(a URL, hf:\/\/ORG\/NAME, .*; or -i FILE, a list of URLs\); see mtune pull --help$/)
  })
})

describe('mtune pull through a proxy', () => {
  it('a proxy that is down or mistyped is named as the proxy, not as the server', async () => {
    const m = await mirror()
    const port = await freePort()
    const r = await runCli(['pull', m.url, '-o', join(dir(), 'model.bin'), '--retries', '1'], {HTTP_PROXY: `http://127.0.0.1:${port}`, NO_PROXY: ''})
    assert.equal(r.code, 3, r.stderr)
    assert.match(r.stderr, new RegExp(`cannot reach the proxy 127\\.0\\.0\\.1:${port} \\(connection refused\\): check HTTPS_PROXY/HTTP_PROXY/ALL_PROXY, or put this host in NO_PROXY`))
    assert.equal(m.requests.length, 0)
  })

  it('uses HTTP_PROXY, and goes direct for hosts and address ranges in NO_PROXY', async () => {
    const {startConnectProxy} = await import('./support/connect-proxy.js')
    const proxy = await startConnectProxy()
    const m = await mirror()
    // The mirror by name, so that NO_PROXY can name it.
    const url = m.url.replace('127.0.0.1', 'localhost')
    try {
      const via = await runCli(['pull', url, '-o', join(dir(), 'model.bin'), '--debug'], {HTTP_PROXY: proxy.url, NO_PROXY: ''})
      assert.equal(via.code, 0, via.stderr)
      assert.match(via.stderr, new RegExp(`range requests to ${new URL(url).origin}: undici, via proxy ${new URL(proxy.url).host} \\(forwarded\\)`))
      assert.match(via.stdout, new RegExp(`sha256 ${digest}`))
      // Plain http is forwarded by the proxy (as curl sends it), not tunnelled.
      assert.ok(proxy.forwarded.length >= 1 && proxy.forwarded.every((u) => u.startsWith('http://localhost:')), proxy.forwarded.join())
      assert.deepEqual(proxy.tunnels, [])
      const before = proxy.hosts.length
      const direct = await runCli(['pull', url, '-o', join(dir(), 'model.bin'), '--debug'], {HTTP_PROXY: proxy.url, NO_PROXY: 'localhost'})
      assert.equal(direct.code, 0, direct.stderr)
      assert.match(direct.stderr, new RegExp(`range requests to ${new URL(url).origin}: mtune's client, direct`), 'the fast client for a host in NO_PROXY')
      assert.equal(proxy.hosts.length, before, 'NO_PROXY host bypassed the proxy')
      // An address range, as Kubernetes clusters write NO_PROXY (curl, Go and requests honour it; undici alone did not).
      const range = await runCli(['pull', m.url, '-o', join(dir(), 'model.bin'), '--debug'], {HTTP_PROXY: proxy.url, NO_PROXY: '.svc,10.0.0.0/8,127.0.0.0/8'})
      assert.equal(range.code, 0, range.stderr)
      assert.match(range.stderr, new RegExp(`range requests to ${new URL(m.url).origin}: mtune's client, direct`))
      assert.equal(proxy.hosts.length, before, 'the address in the NO_PROXY range bypassed the proxy')
    } finally {
      await proxy.close()
    }
  })

  it('gives up with the reason when the proxy cannot reach the server: a tunnel it closes, a forwarded request it answers', async () => {
    const {startConnectProxy} = await import('./support/connect-proxy.js')
    // This proxy closes the client's connection when it cannot open a tunnel to the server (port
    // 1: nothing listens), as some proxies do for hosts their rules deny. undici 7 alone
    // reconnects forever.
    const proxy = await startConnectProxy()
    try {
      const r = await runCli(['pull', 'https://127.0.0.1:1/model.bin', '-o', join(dir(), 'model.bin'), '--retries', '2'], {HTTPS_PROXY: proxy.url, NO_PROXY: ''})
      assert.equal(r.code, 3, r.stderr)
      assert.match(r.stderr, /^Error: cannot download .*: the proxy closed the connection instead of opening a tunnel to 127\.0\.0\.1:1 \(.*\): check HTTPS_PROXY\/HTTP_PROXY and NO_PROXY$/m)
      assert.ok(proxy.tunnels.length >= 2 && proxy.tunnels.length < 10, `asked again a few times, not in a loop: ${proxy.tunnels.length}`)
      // Plain http is the proxy's to forward: its 502 is retried, then named as possibly its own.
      const forwarded = await runCli(['pull', 'http://127.0.0.1:1/model.bin', '-o', join(dir(), 'model.bin'), '--retries', '2'], {HTTP_PROXY: proxy.url, NO_PROXY: ''})
      assert.equal(forwarded.code, 3, forwarded.stderr)
      assert.match(forwarded.stderr, new RegExp(`^Error: cannot download .*: HTTP 502 from 127\\.0\\.0\\.1:1 \\(forwarded by the proxy ${new URL(proxy.url).host}, which may have answered itself\\)$`, 'm'))
      assert.ok(proxy.forwarded.length >= 2 && proxy.forwarded.length < 10, `asked again a few times: ${proxy.forwarded.length}`)
    } finally {
      await proxy.close()
    }
  })

  it('gives a proxy that never answers the stall timeout, and Ctrl-C ends the pull though undici cannot cancel that wait', {timeout: 120_000}, async () => {
    // Accepts connections and says nothing, as a proxy behind a dead firewall rule does.
    const held = new Set<Socket>()
    const silent = createNetServer((socket) => {
      held.add(socket)
      socket.on('error', () => {})
    })
    silent.listen(0, '127.0.0.1')
    await once(silent, 'listening')
    const proxyUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`
    try {
      const stalled = await runCli(['pull', 'https://127.0.0.1:1/model.bin', '-o', join(dir(), 'model.bin'), '--stall-timeout', '2', '--retries', '1'], {HTTPS_PROXY: proxyUrl, NO_PROXY: ''})
      assert.equal(stalled.code, 3, stalled.stderr)
      assert.match(stalled.stderr, /^Error: cannot download .*: the proxy did not answer the request for a tunnel to 127\.0\.0\.1:1 within 2 s: check HTTPS_PROXY\/HTTP_PROXY and NO_PROXY$/m)
      // Plain http, which the proxy would forward: its silence is a stall like any server's.
      const forwarded = await runCli(['pull', 'http://127.0.0.1:1/model.bin', '-o', join(dir(), 'model.bin'), '--stall-timeout', '2', '--retries', '1'], {HTTP_PROXY: proxyUrl, NO_PROXY: ''})
      assert.equal(forwarded.code, 3, forwarded.stderr)
      assert.match(forwarded.stderr, /^Error: cannot download .*: stalled: no data within the stall timeout$/m)
      // undici's proxy agent passes no signal to the CONNECT it waits on: the abort alone would
      // leave the pull waiting the whole stall timeout; it exits after the grace period instead.
      const before = held.size
      const run = startCli(['pull', 'https://127.0.0.1:1/model.bin', '-o', join(dir(), 'model.bin'), '--stall-timeout', '600'], {HTTPS_PROXY: proxyUrl, NO_PROXY: ''})
      await until(() => held.size > before, 'the pull to wait on the proxy')
      run.child.kill('SIGINT')
      const r = await run.done
      assert.equal(r.code, 130, r.stderr)
      assert.match(r.stderr, /^Error: interrupted: run the same command again to resume$/m)
      assert.ok(!hasStack(r.stderr))
    } finally {
      for (const socket of held) socket.destroy()
      silent.close()
    }
  })

  it('reads proxy variables as curl does: no scheme is an http proxy, socks5h:// is socks5://, ALL_PROXY counts; one it cannot use is one line (exit 2)', async () => {
    const {startConnectProxy} = await import('./support/connect-proxy.js')
    const {startSocksProxy} = await import('./support/socks-proxy.js')
    const [proxy, socks, m] = [await startConnectProxy(), await startSocksProxy(), await mirror()]
    const url = m.url.replace('127.0.0.1', 'localhost')
    try {
      // `proxy.corp:3128`, as curl, wget and requests take it; undici alone calls it an invalid URL.
      const bare = await runCli(['pull', url, '-o', join(dir(), 'model.bin'), '--json'], {HTTP_PROXY: new URL(proxy.url).host, NO_PROXY: ''})
      assert.equal(bare.code, 0, bare.stderr)
      assert.ok(proxy.forwarded.length >= 1, 'through the proxy')
      // SOCKS5 in ALL_PROXY (as curl reads it), the host name resolved by the proxy; undici's
      // "experimental" warning is not shown.
      const viaSocks = await runCli(['pull', url, '-o', join(dir(), 'model.bin'), '--json'], {ALL_PROXY: socks.url.replace('socks5:', 'socks5h:'), HTTP_PROXY: '', NO_PROXY: ''})
      assert.equal(viaSocks.code, 0, viaSocks.stderr)
      assert.equal(JSON.parse(viaSocks.stdout).sha256, digest)
      assert.ok(socks.connects.length >= 1 && socks.connects.every((c) => c === `localhost:${new URL(m.url).port}`), socks.connects.join())
      assert.equal(viaSocks.stderr, '', 'nothing but the JSON')
      const bench = await runCli(['bench', '--mirror', url, '--connections', '1', '--chunk-size', '1M', '--duration', '2', '--json'], {HTTP_PROXY: socks.url, NO_PROXY: '', XDG_CACHE_HOME: dir()})
      assert.equal(bench.code, 0, bench.stderr)
      assert.equal(JSON.parse(bench.stdout).mirrors[0].proxy, new URL(socks.url).host, 'bench names the proxy it measured through')
      const before = m.requests.length
      const socks4 = await runCli(['pull', url, '-o', join(dir(), 'model.bin')], {HTTP_PROXY: 'socks4://ops:pr0xy-pw@127.0.0.1:1080', NO_PROXY: ''})
      assert.equal(socks4.code, 2, socks4.stderr)
      assert.equal(socks4.stderr.trim(), 'Error: HTTP_PROXY=socks4://ops:***@127.0.0.1:1080: socks4:// proxies are not supported: give an http://, https:// or socks5:// proxy')
      assert.equal(m.requests.length, before, 'nothing was fetched')
      // A server that says nothing behind the SOCKS5 proxy is a stall after --stall-timeout, not
      // after undici's 300 s (its SOCKS5 pools are made without the agent's timeouts).
      const held = new Set<Socket>()
      const silent = createNetServer((socket) => void held.add(socket.on('error', () => {})))
      silent.listen(0, '127.0.0.1')
      await once(silent, 'listening')
      try {
        const started = Date.now()
        const stalled = await runCli(['pull', `http://127.0.0.1:${(silent.address() as AddressInfo).port}/m.bin`, '-o', join(dir(), 'model.bin'), '--stall-timeout', '2', '--retries', '1'], {HTTP_PROXY: socks.url, NO_PROXY: ''})
        assert.equal(stalled.code, 3, stalled.stderr)
        assert.match(stalled.stderr, /stalled: no data within the stall timeout/)
        assert.ok(Date.now() - started < 60_000, 'within a few stall timeouts')
      } finally {
        for (const socket of held) socket.destroy()
        silent.close()
      }
    } finally {
      await Promise.all([proxy.close(), socks.close()])
    }
  })

  it('authenticates to a proxy with the credentials in its URL, and says so plainly when they are refused', async () => {
    const {startConnectProxy} = await import('./support/connect-proxy.js')
    const proxy = await startConnectProxy('ops:pr0xy-pw')
    const m = await mirror()
    const url = m.url.replace('127.0.0.1', 'localhost')
    try {
      const ok = await runCli(['pull', url, '-o', join(dir(), 'model.bin'), '--json'], {HTTP_PROXY: proxy.url.replace('http://', 'http://ops:pr0xy-pw@'), NO_PROXY: ''})
      assert.equal(ok.code, 0, ok.stderr)
      assert.ok(proxy.forwarded.length >= 1)
      const bad = await runCli(['pull', url, '-o', join(dir(), 'model.bin'), '--debug'], {HTTP_PROXY: proxy.url.replace('http://', 'http://ops:wrong-pw@'), NO_PROXY: ''})
      assert.equal(bad.code, 3, bad.stderr)
      assert.match(bad.stderr, /^Error: cannot download .*: the proxy wants credentials, or refused the ones given \(407\): put them in HTTPS_PROXY\/HTTP_PROXY/m)
      assert.equal(proxy.refused, 1, 'a refusal by the proxy is not retried')
      // The same refusal of a tunnel (https://), which the proxy answers before any server is reached.
      const tunnel = await runCli(['pull', 'https://127.0.0.1:1/model.bin', '-o', join(dir(), 'model.bin')], {HTTPS_PROXY: proxy.url.replace('http://', 'http://ops:wrong-pw@'), NO_PROXY: ''})
      assert.equal(tunnel.code, 3, tunnel.stderr)
      assert.match(tunnel.stderr, /^Error: cannot download .*: the proxy wants credentials, or refused the ones given \(407\)/m)
      assert.equal(proxy.refused, 2)
      assert.doesNotMatch(bad.stdout + bad.stderr, /wrong-pw/, 'not even --debug shows the password')
    } finally {
      await proxy.close()
    }
  })
})

describe('mtune pull over TLS', () => {
  const fixtures = join(BIN, '..', '..', 'test', 'fixtures', 'tls')
  const tls = {key: readFileSync(join(fixtures, 'key.pem')), cert: readFileSync(join(fixtures, 'cert.pem'))}

  it('refuses a certificate it cannot verify, at once and in one line', async () => {
    const m = await mirror({tls})
    const r = await runCli(['pull', m.url, '-o', join(dir(), 'model.bin')])
    assert.equal(r.code, 3, r.stderr)
    assert.match(r.stderr, /^Error: cannot download https:.*TLS verification failed/m)
    assert.equal(m.requests.length, 0, 'not a byte requested over an unverified connection')
  })

  it('downloads over https from a server whose CA is trusted', async () => {
    const m = await mirror({tls})
    const r = await runCli(['pull', m.url, '-o', join(dir(), 'model.bin'), '--json'], {NODE_EXTRA_CA_CERTS: join(fixtures, 'cert.pem')})
    assert.equal(r.code, 0, r.stderr)
    assert.equal(JSON.parse(r.stdout).sha256, digest)
  })

  it("trusts what this system trusts: its CA bundle, or SSL_CERT_FILE, beside Node's own CAs", async () => {
    const m = await mirror({tls})
    // bin/run.js hands Node the bundle that curl, Go and Python's httpx read (SSL_CERT_FILE, else
    // the system's, which update-ca-certificates writes); a NODE_EXTRA_CA_CERTS the user set wins.
    const trusted = await runCli(['pull', m.url, '-o', join(dir(), 'model.bin'), '--json'], {NODE_EXTRA_CA_CERTS: '', SSL_CERT_FILE: join(fixtures, 'cert.pem')})
    assert.equal(trusted.code, 0, trusted.stderr)
    assert.equal(JSON.parse(trusted.stdout).sha256, digest)
    const other = join(dir(), 'other-ca.pem')
    writeFileSync(other, rootCertificates[0])
    const theirs = await runCli(['pull', m.url, '-o', join(dir(), 'model.bin')], {NODE_EXTRA_CA_CERTS: other, SSL_CERT_FILE: join(fixtures, 'cert.pem')})
    assert.equal(theirs.code, 3, theirs.stderr)
    assert.match(theirs.stderr, new RegExp(`not trusted by Node's CAs or those in ${other.replace(/[.]/g, '\\.')}: add the private CA there`))
    // SSL_CERT_FILE naming a directory (SSL_CERT_DIR's kind) is passed over for the system's
    // bundle: Node ignores a directory without a word, and the system's CAs were then missing.
    const folder = await runCli(['pull', m.url, '-o', join(dir(), 'model.bin')], {NODE_EXTRA_CA_CERTS: '', SSL_CERT_FILE: fixtures})
    assert.equal(folder.code, 3)
    assert.ok(!folder.stderr.includes(`those in ${fixtures}`), folder.stderr)
  })
})

describe('mtune pull on a terminal', () => {
  it('draws a live bar with bytes, percentage, rate, ETA and connections', async () => {
    const m = await mirror({linkRate: 12 * MiB})
    const out = join(dir(), 'model.bin')
    // script(1) gives the CLI a pseudo-terminal, as a person's shell would.
    // Asynchronously: the mirror serving it runs in this process.
    const {spawn} = await import('node:child_process')
    const child = spawn('script', ['-qec', `${process.execPath} ${BIN} pull ${m.url} -o ${out}`, '/dev/null'], {
      env: {...process.env, XDG_CACHE_HOME: cliCacheHome(), NO_COLOR: '1', TERM: 'xterm'},
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let screen = ''
    child.stdout!.on('data', (d) => (screen += d))
    const code = await new Promise((res) => child.on('close', res))
    assert.equal(code, 0, screen)
    const frames = screen.split(/\r|\n/).filter((l) => l.includes(' conn'))
    assert.ok(frames.length >= 2, `several frames of the bar (got ${frames.length})`)
    assert.ok(
      frames.some((f) => /[█░]+ \d+\.\d% [\d.]+ (KiB|MiB)\/32\.0 MiB {2}[\d.]+ (B|KiB|MiB)\/s {2}ETA (\d+s|--) {2}\d+ conn/.test(f)),
      frames.slice(0, 3).join('\n'),
    )
    assert.doesNotMatch(screen, /^progress /m, 'no plain progress lines on a terminal')
    assert.equal(sha256(readFileSync(out)), digest)
  })
})
