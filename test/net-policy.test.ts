import assert from 'node:assert/strict'
import {checkServerIdentity} from 'node:tls'
import {describe, it} from 'node:test'
import {dispositionFilename, downloadName, ifRangeValidator, parseContentRange, safeFilename, sameVersion, serverFilename, unsatisfiedLength} from '../src/lib/net/http-range.js'
import {MAX_SERVER_WAIT_MS, TransferError, backoffDelay, cappedWait, classifyNetworkError, classifyStatus, onUsedSocket, parseRetryAfter, serverWait} from '../src/lib/net/retry-policy.js'
import {ConnectionController} from '../src/lib/transfer/connection-controller.js'
import {SOURCE_FAILURE_LIMIT, decideFailure, type FailureFacts} from '../src/lib/transfer/failure-policy.js'
import {CpuHeadroom, FirstStepUp, StepInEffect} from '../src/lib/transfer/ramp.js'

describe('HTTP range facts', () => {
  it('parses Content-Range and the 416 form', () => {
    assert.deepEqual(parseContentRange('bytes 0-99/1000'), {start: 0, end: 99, total: 1000})
    assert.deepEqual(parseContentRange('bytes 5-9/*'), {start: 5, end: 9, total: undefined})
    assert.equal(parseContentRange('bytes 9-5/10'), undefined)
    assert.equal(parseContentRange('items 0-1/2'), undefined)
    assert.equal(unsatisfiedLength('bytes */1234'), 1234)
  })

  it('never uses a weak ETag for If-Range', () => {
    assert.equal(ifRangeValidator({etag: '"abc"', lastModified: 'x'}), '"abc"')
    assert.equal(ifRangeValidator({etag: 'W/"abc"', lastModified: 'Tue, 01 Jan 2026 00:00:00 GMT'}), 'Tue, 01 Jan 2026 00:00:00 GMT')
    assert.equal(ifRangeValidator({etag: 'W/"abc"'}), undefined)
  })

  it('tells a 200 to If-Range that ignored the range from a new version of the file', () => {
    const lm = 'Thu, 01 Jan 2026 00:00:00 GMT'
    assert.equal(sameVersion({etag: '"a"', lastModified: lm}, {etag: '"a"'}), true)
    assert.equal(sameVersion({etag: '"a"', lastModified: lm}, {etag: '"b"', lastModified: lm}), false, 'the strong ETag decides')
    assert.equal(sameVersion({etag: 'W/"a"', lastModified: lm}, {etag: 'W/"a"', lastModified: lm}), true, 'a weak ETag was not what was sent: Last-Modified decides')
    assert.equal(sameVersion({lastModified: lm}, {lastModified: 'Fri, 02 Jan 2026 00:00:00 GMT'}), false)
    assert.equal(sameVersion({etag: '"a"'}, {}), undefined, 'nothing to compare with')
  })

  it('takes file names from Content-Disposition and makes them safe', () => {
    assert.equal(dispositionFilename('attachment; filename="model.gguf"'), 'model.gguf')
    assert.equal(dispositionFilename("attachment; filename*=UTF-8''mod%C3%A8le.bin; filename=\"x.bin\""), 'modèle.bin')
    assert.equal(safeFilename('../../etc/passwd'), 'passwd')
    assert.equal(safeFilename('..'), undefined)
    assert.equal(safeFilename('a\\b\u0000c'), 'bc')
    assert.equal(safeFilename('model\u009b2J\u202egguf.exe'), 'model2Jgguf.exe', 'no C1 control (CSI), no bidi override')
    assert.equal(safeFilename('x'.repeat(300)), undefined)
    // A name the server chose never makes a hidden file (~/.bash_profile): as browsers save it.
    assert.equal(serverFilename('.bash_profile'), 'bash_profile')
    assert.equal(serverFilename('../../.ssh/..authorized_keys'), 'authorized_keys')
    assert.equal(serverFilename(' . .'), undefined)
    assert.equal(serverFilename('model.v2.gguf'), 'model.v2.gguf')
  })

  it('names a redirected download after the URL given, unless that names no file and the redirect does', () => {
    const name = (given: string, landed: string) => downloadName(new URL(given), new URL(landed))
    const digest = 'a'.repeat(64)
    assert.equal(name('https://hub/org/m/resolve/main/model.safetensors', `https://cdn/repos/ab/cd/${digest}?Expires=1`), 'model.safetensors', 'a CDN named by digest')
    assert.equal(name('https://hub/org/m/resolve/main/tokenizer', `https://cdn/blobs/sha256:${digest}`), 'tokenizer', 'a digest never names it, extension or not')
    assert.equal(name('https://site/download?os=linux', 'https://cdn/stable/tool-1.2.tar.gz'), 'tool-1.2.tar.gz', 'as aria2c and wget --trust-server-names')
    assert.equal(name('https://site/latest/model.gguf', 'https://cdn/v3/model-v3.gguf'), 'model.gguf', 'as curl -O and wget')
    assert.equal(name('https://site/', 'https://cdn/file.bin'), 'file.bin')
    assert.equal(name('https://site/x.bin', 'https://site/x.bin'), 'x.bin')
    assert.equal(name('https://site/download', 'https://evil/.bash_profile'), 'bash_profile', "a redirect's name is the server's")
    assert.equal(name('https://site/.env-example', 'https://site/.env-example'), '.env-example', "the user's own URL names it as typed")
  })
})

describe('retry policy', () => {
  it('classifies statuses', () => {
    assert.equal(classifyStatus(429), 'throttle')
    assert.equal(classifyStatus(503), 'throttle')
    assert.equal(classifyStatus(500), 'transient')
    assert.equal(classifyStatus(502), 'transient')
    assert.equal(classifyStatus(404), 'fatal')
    assert.equal(classifyStatus(410), 'fatal')
    assert.equal(classifyStatus(401), 'fatal')
  })

  it('classifies network errors: resets are transient, unknown hosts fatal', () => {
    assert.equal(classifyNetworkError(Object.assign(new Error('x'), {code: 'ECONNRESET'})).kind, 'transient')
    assert.equal(classifyNetworkError(Object.assign(new Error('x'), {code: 'UND_ERR_BODY_TIMEOUT'})).kind, 'transient')
    assert.equal(classifyNetworkError(Object.assign(new Error('x'), {code: 'ENOTFOUND'})).kind, 'fatal')
    const e = new TransferError('changed', 'x')
    assert.equal(classifyNetworkError(e), e)
  })

  it('says when the proxy itself cannot be reached, not the server behind it', () => {
    const saved = {...process.env}
    try {
      for (const k of ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY']) delete process.env[k]
      process.env.HTTPS_PROXY = 'http://proxy.corp:3128'
      process.env.ALL_PROXY = 'socks5://10.0.0.9'
      const refused = classifyNetworkError(Object.assign(new Error('connect ECONNREFUSED 10.0.0.9:1080'), {code: 'ECONNREFUSED', address: '10.0.0.9', port: 1080}))
      assert.equal(refused.kind, 'transient', 'a proxy restarting comes back')
      assert.equal(refused.message, 'cannot reach the proxy 10.0.0.9 (connection refused): check HTTPS_PROXY/HTTP_PROXY/ALL_PROXY, or put this host in NO_PROXY')
      const unknown = classifyNetworkError(Object.assign(new Error('getaddrinfo ENOTFOUND proxy.corp'), {code: 'ENOTFOUND', hostname: 'proxy.corp'}))
      assert.equal(unknown.kind, 'fatal')
      assert.match(unknown.message, /^cannot reach the proxy proxy\.corp:3128 \(its host is not found\)/)
      // The server's own address, or another port on the proxy's host, is the server's failure.
      assert.match(classifyNetworkError(Object.assign(new Error('connect ECONNREFUSED 10.0.0.9:8080'), {code: 'ECONNREFUSED', address: '10.0.0.9', port: 8080})).message, /^connection refused \(10\.0\.0\.9:8080\)$/)
      assert.match(classifyNetworkError(Object.assign(new Error('getaddrinfo ENOTFOUND mirror.example'), {code: 'ENOTFOUND', hostname: 'mirror.example'})).message, /^host not found/)
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k]
      Object.assign(process.env, saved)
    }
  })

  it('tells a server without TLS from a certificate it cannot trust, each with its fix', () => {
    const tls = (code: string) => classifyNetworkError(Object.assign(new Error('x'), {code}))
    for (const code of ['ERR_SSL_WRONG_VERSION_NUMBER', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'ERR_TLS_CERT_ALTNAME_INVALID', 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE']) assert.equal(tls(code).kind, 'fatal', code)
    assert.match(tls('ERR_SSL_WRONG_VERSION_NUMBER').message, /does not speak TLS on that port .*http:\/\/ URL, or --insecure/)
    const extra = process.env.NODE_EXTRA_CA_CERTS
    try {
      delete process.env.NODE_EXTRA_CA_CERTS
      assert.match(tls('UNABLE_TO_VERIFY_LEAF_SIGNATURE').message, /certificate is not trusted; for a private CA, NODE_EXTRA_CA_CERTS=/)
      // As bin/run.js sets it: the system's bundle, added to Node's CAs.
      process.env.NODE_EXTRA_CA_CERTS = '/etc/ssl/certs/ca-certificates.crt'
      assert.match(
        tls('SELF_SIGNED_CERT_IN_CHAIN').message,
        /not trusted by Node's CAs or those in \/etc\/ssl\/certs\/ca-certificates\.crt: add the private CA there \(update-ca-certificates, for the system's store\)/,
      )
    } finally {
      if (extra === undefined) delete process.env.NODE_EXTRA_CA_CERTS
      else process.env.NODE_EXTRA_CA_CERTS = extra
    }
    const wrongName = checkServerIdentity('mirror.example.com', {subject: {CN: 'cdn.example.net'}, subjectaltname: 'DNS:cdn.example.net, DNS:*.cdn.example.net'} as never)
    assert.equal(
      classifyNetworkError(wrongName).message,
      "TLS verification failed (ERR_TLS_CERT_ALTNAME_INVALID): the server's certificate is for other names (DNS:cdn.example.net, DNS:*.cdn.example.net): use a URL with one of them",
    )
    assert.match(tls('CERT_HAS_EXPIRED').message, /not valid at this machine's time \(20\d\d-.*\): check the clock \(timedatectl\)/)
    assert.match(tls('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE').message, /handshake failed .*protocol version or cipher/)
  })

  it('reads Retry-After as seconds or as a date', () => {
    assert.equal(parseRetryAfter('3'), 3000)
    const now = Date.parse('2026-01-01T00:00:00Z')
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', now), 10_000)
    assert.equal(parseRetryAfter('soon'), undefined)
  })

  it("takes a server's wait from Retry-After, else from a RateLimit header's reset (the Hub's)", () => {
    assert.equal(serverWait({'retry-after': '3', ratelimit: '"api";r=0;t=55'}), 3000, 'Retry-After wins')
    assert.equal(serverWait({ratelimit: '"resolvers";r=0;t=55'}), 55_000)
    assert.equal(serverWait({ratelimit: ['"api";r=0;t=7']}), 7000)
    assert.equal(serverWait({ratelimit: 'limit=100, remaining=0, reset=30'}), 30_000, "the earlier draft's form")
    assert.equal(serverWait({'ratelimit-reset': '12'}), 12_000, "the earlier drafts' own header")
    assert.equal(serverWait({'retry-after': 'soon', ratelimit: 'remaining=0'}), undefined, 'nothing readable: the backoff decides')
    assert.equal(serverWait({}), undefined)
  })

  it('backs off exponentially with bounded jitter, and never sooner than Retry-After', () => {
    const low = () => 0
    const high = () => 1
    assert.equal(backoffDelay(1, low), 125)
    assert.equal(backoffDelay(1, high), 250)
    assert.equal(backoffDelay(3, high), 1000)
    assert.equal(backoffDelay(30, high), 30_000, 'capped')
    assert.equal(backoffDelay(1, low, undefined, 5000), 5000)
  })
})

describe('refusals and kept-alive sockets', () => {
  it('tells a kept-alive socket the server closed from a fresh one it turned away', () => {
    const closed = (bytesRead: number) => Object.assign(new Error('other side closed'), {code: 'UND_ERR_SOCKET', socket: {bytesRead, bytesWritten: 200}})
    assert.equal(onUsedSocket(classifyNetworkError(closed(155_288))), true, 'it had read a response before: idle close, not a refusal')
    assert.equal(onUsedSocket(closed(0)), false)
    assert.equal(onUsedSocket(Object.assign(new Error('read ECONNRESET'), {code: 'ECONNRESET'})), false, 'no socket facts: may be a refusal')
  })
})

describe('ConnectionController', () => {
  it('grows while throughput grows, then steps back to the plateau and holds', () => {
    const c = new ConnectionController({initial: 4, max: 64, settleMs: 100}, 0)
    assert.equal(c.sample(50, 40, true), 4, 'waits for the settle time')
    assert.equal(c.sample(100, 40, true), 8, 'first step doubles')
    assert.equal(c.sample(200, 80, true), 10, 'a gain, even a linear one: a quarter more, not double')
    assert.equal(c.sample(300, 100, true), 13)
    assert.equal(c.sample(400, 101, true), 10, 'no gain: back to the count before the useless step')
    assert.equal(c.sample(600, 200, true), 10, 'holds for a while after a plateau')
  })

  it('takes the first step without the settle wait, and judges it by the baseline reported after', () => {
    const c = new ConnectionController({initial: 4, max: 64, settleMs: 100}, 0)
    assert.equal(c.stepFirst(10, true), 8, 'no settle wait for the first step')
    assert.equal(c.stepFirst(20, true), 8, 'only the first step is early')
    c.baseline(40)
    assert.equal(c.sample(60, 80, true), 8, 'the step settles like any other')
    assert.equal(c.sample(110, 41, true), 4, 'no gain over the baseline: back to where it was')
  })

  it('undoes a step, whatever it seemed to gain, when the machine is out of CPU, and does not grow', () => {
    const c = new ConnectionController({initial: 16, max: 64, settleMs: 100}, 0)
    assert.equal(c.stepFirst(10, true), 32)
    c.baseline(500)
    assert.equal(c.sample(200, 560, true, 'machine'), 16, 'a 12% gain on a machine with no CPU left is noise')
    const d = new ConnectionController({initial: 16, max: 64, settleMs: 100}, 0)
    assert.equal(d.sample(200, 500, true, 'machine'), 16, 'no first step either')
    const e = new ConnectionController({initial: 16, max: 64, settleMs: 100}, 0)
    assert.equal(e.stepFirst(10, true), 32)
    e.baseline(undefined)
    assert.equal(e.sample(200, 500, true, 'machine'), 16, 'an unjudged step is undone too')
  })

  it('sheds connections while its own event loop is the limit, and keeps the cut only if throughput held', () => {
    const c = new ConnectionController({initial: 16, max: 64, settleMs: 100}, 0)
    assert.equal(c.sample(200, 900, true, 'machine'), 16, 'CPUs busy, loop not: no shedding')
    assert.equal(c.sample(300, 900, true, 'loop'), 8, 'the loop is the limit: half')
    assert.equal(c.sample(350, 500, true, 'loop'), 8, 'judged after the settle time')
    assert.equal(c.sample(450, 600, true, 'loop'), 8, 'two thirds of the rate held (a saturated machine drifts): kept')
    assert.equal(c.sample(600, 600, true, 'loop'), 8, 'never below 8')
    assert.equal(c.sample(30_000, 600, true, 'none'), 16, 'CPU to spare again, after the hold: growth resumes (a first step doubles)')

    const capped = new ConnectionController({initial: 16, max: 64, settleMs: 100}, 0)
    assert.equal(capped.sample(200, 128, true, 'loop'), 8)
    assert.equal(capped.sample(400, 66, true, 'loop'), 16, 'half the rate with half the connections: a server capping each; back')
    assert.equal(capped.sample(600, 128, true, 'loop'), 16, 'and never shed again')
    assert.equal(capped.sample(60_000, 128, true, 'loop'), 16)

    const many = new ConnectionController({initial: 64, max: 64, settleMs: 100}, 0)
    assert.equal(many.sample(200, 900, true, 'loop'), 32)
    assert.equal(many.sample(400, 900, true, 'loop'), 32, 'judged: kept')
    assert.equal(many.sample(600, 900, true, 'loop'), 16, 'then the next halving')
    assert.equal(many.sample(800, 900, true, 'loop'), 16)
    assert.equal(many.sample(1000, 900, true, 'loop'), 8)
  })

  it('undoes a step first when the loop saturates, and sheds from the count it came back to', () => {
    const c = new ConnectionController({initial: 16, max: 64, settleMs: 100}, 0)
    assert.equal(c.stepFirst(10, true), 32)
    c.baseline(700)
    assert.equal(c.sample(200, 1000, true, 'loop'), 16, 'the step is undone: its early burst says nothing of 16')
    assert.equal(c.sample(400, 900, true, 'loop'), 8, 'then shed, judged against what 16 did')
  })

  it('forgets a shed being judged when the server sets the count', () => {
    const c = new ConnectionController({initial: 16, max: 64, settleMs: 100, throttleHoldMs: 1000}, 0)
    assert.equal(c.sample(200, 900, true, 'loop'), 8)
    assert.equal(c.throttled(250, 16), 4, '503: half of those still running')
    assert.equal(c.sample(1400, 100, true, 'none'), 8, 'no shed to judge: growth after the hold')
  })

  it('leaves a first step without a fair baseline unjudged, and judges the next one', () => {
    const c = new ConnectionController({initial: 16, max: 64, settleMs: 100}, 0)
    assert.equal(c.stepFirst(10, true), 32)
    c.baseline(undefined)
    assert.equal(c.sample(110, 100, true), 40, 'not undone, not doubled: a small step on')
    assert.equal(c.sample(210, 101, true), 32, 'that one bought nothing: back to 32, not 16')
  })

  it('takes no early first step while the server\'s "too many" holds', () => {
    const c = new ConnectionController({initial: 16, max: 64, settleMs: 100, throttleHoldMs: 1000}, 0)
    assert.equal(c.throttled(10, 16), 8)
    assert.equal(c.stepFirst(20, true), 8)
    assert.equal(c.refused(30, 6), 6)
    assert.equal(c.stepFirst(40, true), 6)
  })

  it('forgets the first step\'s baseline when the server sets the count', () => {
    const c = new ConnectionController({initial: 16, max: 64, settleMs: 100, throttleHoldMs: 1000}, 0)
    c.stepFirst(10, true)
    assert.equal(c.throttled(20, 32), 16)
    c.baseline(1000)
    assert.equal(c.sample(1100, 100, true), 20, 'grows again after the hold, by a quarter, not judged against the stale baseline')
  })

  it('halves on throttling and does not grow again for the hold time', () => {
    const c = new ConnectionController({initial: 16, max: 64, settleMs: 100, throttleHoldMs: 1000}, 0)
    assert.equal(c.throttled(10, 16), 8)
    assert.equal(c.sample(500, 100, true), 8)
    assert.equal(c.sample(1200, 100, true), 16)
  })

  it('holds at the connections that work when the server refuses more, then probes again', () => {
    const c = new ConnectionController({initial: 16, max: 64, settleMs: 100, throttleHoldMs: 1000}, 0)
    assert.equal(c.refused(10, 4), 4)
    assert.equal(c.refused(20, 6), 4, 'never raised by a refusal')
    assert.equal(c.sample(500, 100, true), 4)
    assert.equal(c.sample(1200, 100, true), 8)
  })

  it('never exceeds the maximum nor grows without room', () => {
    const c = new ConnectionController({initial: 4, max: 6, settleMs: 0}, 0)
    assert.equal(c.sample(1, 10, true), 6)
    const d = new ConnectionController({initial: 4, max: 64, settleMs: 0}, 0)
    assert.equal(d.sample(1, 10, false), 4)
  })
})

describe('FirstStepUp', () => {
  const timing = {delayMs: 50, minWindowMs: 60, maxWindowMs: 150}
  const conns = (n: number, firstByteAt?: number) => Array.from({length: n}, () => ({startedAt: 0, firstByteAt}))

  it('steps once the first connections are all receiving, and measures them while the added ones wait', () => {
    const controller = new ConnectionController({initial: 4, max: 64, settleMs: 400}, 0)
    const step = new FirstStepUp(controller, timing)
    const running = conns(4)
    assert.deepEqual(step.update(100, running, 0, true), {kind: 'idle'}, 'not before every first byte is in')
    running.forEach((c, i) => (c.firstByteAt = 180 + i))
    assert.deepEqual(step.update(200, running, 1_000, true), {kind: 'wait', at: 233}, 'past the first burst')
    assert.deepEqual(step.update(233, running, 2_000, true), {kind: 'stepped', from: 4, to: 8})
    const added = Array.from({length: 4}, () => ({startedAt: 233, firstByteAt: undefined as number | undefined}))
    const all = [...running, ...added]
    assert.deepEqual(step.update(300, all, 3_000, true), {kind: 'wait', at: 383})
    added[0].firstByteAt = 313
    // 8 MB in the 80 ms before the first added connection answered: 100 MB/s.
    assert.deepEqual(step.update(313, all, 2_000 + 8_000_000, true), {kind: 'measured', baseline: 100_000_000, windowMs: 80})
    assert.equal(controller.sample(700, 150_000_000, true), 10, 'judged by that baseline: a gain, so on')
  })

  it('gives no baseline when the added connections answer much sooner than the first ones did', () => {
    const controller = new ConnectionController({initial: 2, max: 64, settleMs: 400}, 0)
    const step = new FirstStepUp(controller, timing)
    const running = conns(2, 80)
    assert.equal(step.update(130, running, 0, true).kind, 'stepped')
    const all = [...running, {startedAt: 130, firstByteAt: 132}]
    assert.deepEqual(step.update(132, all, 100, true), {kind: 'measured', baseline: undefined, windowMs: 2})
    assert.equal(controller.sample(600, 1_000, true), 6, 'the step stands, and growth goes on in small steps')
  })

  it('stops measuring after the longest window, and takes no step without room', () => {
    const controller = new ConnectionController({initial: 2, max: 64, settleMs: 400}, 0)
    const step = new FirstStepUp(controller, timing)
    assert.equal(step.update(130, conns(2, 80), 0, true).kind, 'stepped')
    assert.deepEqual(step.update(280, conns(2, 80), 15_000_000, true), {kind: 'measured', baseline: 100_000_000, windowMs: 150})
    const full = new FirstStepUp(new ConnectionController({initial: 2, max: 64}, 0), timing)
    assert.deepEqual(full.update(130, conns(2, 80), 0, false), {kind: 'idle'})
  })

  it('on a server that answers at once, measures the baseline first and steps after', () => {
    const controller = new ConnectionController({initial: 4, max: 64, settleMs: 400}, 0)
    const step = new FirstStepUp(controller, timing)
    const running = conns(4, 2)
    assert.deepEqual(step.update(52, running, 0, true), {kind: 'wait', at: 152}, 'no step yet: measuring')
    assert.deepEqual(step.update(152, running, 10_000_000, true), {kind: 'stepped', from: 4, to: 8, baseline: 100_000_000})
    assert.equal(controller.sample(560, 100_000_000, true), 4, 'judged by that baseline: no gain, back to 4')
  })
})

describe('StepInEffect', () => {
  it('judges a change only once most of the target count has received for a whole window', () => {
    const e = new StepInEffect()
    assert.equal(e.judgeable(500, 100, 32, 16, 400), false, 'the added connections are still silent')
    assert.equal(e.judgeable(900, 100, 32, 29, 400), false, 'receiving now: the window starts here')
    assert.equal(e.judgeable(1200, 100, 32, 32, 400), false)
    assert.equal(e.judgeable(1300, 100, 32, 32, 400), true)
  })

  it('judges a cut only once the connections beyond the new count have ended', () => {
    const e = new StepInEffect()
    assert.equal(e.judgeable(500, 100, 8, 16, 400, 16), false, '16 still run: their requests end first')
    assert.equal(e.judgeable(900, 100, 8, 8, 400, 8), false, 'down to 8: the window starts here')
    assert.equal(e.judgeable(1300, 100, 8, 8, 400, 8), true)
  })

  it('starts over at each change, and judges anyway when connections never answer', () => {
    const e = new StepInEffect()
    assert.equal(e.judgeable(500, 0, 16, 16, 400), false)
    assert.equal(e.judgeable(1000, 0, 16, 16, 400), true)
    assert.equal(e.judgeable(1100, 1050, 20, 16, 400), false, 'a new change: its own effect is awaited')
    assert.equal(e.judgeable(11_050, 1050, 20, 16, 400), true, 'never reached: the stall timeout handles those')
  })
})

describe('CpuHeadroom', () => {
  it('tells a saturated event loop from an idle one', async () => {
    const load = new CpuHeadroom()
    load.sample(performance.now())
    const spinUntil = performance.now() + 80
    while (performance.now() < spinUntil) {
      // busy: this is what a loop that cannot keep up with the network looks like
    }
    load.sample(performance.now())
    assert.ok(load.loop(performance.now(), 400) > 0.8, 'busy')
    await new Promise((r) => setTimeout(r, 400))
    load.sample(performance.now())
    assert.ok(load.loop(performance.now(), 300) < 0.5, 'idle')
  })

  it('takes CPUs with no idle time left for the limit only while this process uses a good share of them', () => {
    // Two cores; each sample 100 ms later: the loop busy `loop` ms, this process `own` ms of CPU, the machine `idle` ms idle.
    const at = {t: 0, loop: 0, own: 0, idle: 0, all: 0}
    const load = new CpuHeadroom({loopActive: () => at.loop, ownCpu: () => at.own, machine: () => ({idle: at.idle, all: at.all})})
    const step = (loop: number, own: number, idle: number) => {
      at.t += 100
      at.loop += loop
      at.own += own
      at.idle += idle
      at.all += 200
      load.sample(at.t)
    }
    for (let i = 0; i < 5; i++) step(40, 130, 10)
    assert.equal(load.exhausted(at.t, 400), true, 'a fat pipe: 1.3 cores of 2 are mtune, 5% idle')
    for (let i = 0; i < 5; i++) step(5, 10, 10)
    assert.equal(load.exhausted(at.t, 400), false, 'as busy, but by someone else')
    for (let i = 0; i < 5; i++) step(40, 130, 80)
    assert.equal(load.exhausted(at.t, 400), false, 'cores to spare')
    for (let i = 0; i < 5; i++) step(95, 100, 80)
    assert.equal(load.exhausted(at.t, 400), true, 'its own event loop is the limit')
    assert.equal(load.limit(at.t, 400), 'loop')
    for (let i = 0; i < 5; i++) step(40, 130, 10)
    assert.equal(load.limit(at.t, 400), 'machine', 'the CPUs, not the loop')
  })
})

describe('server-asked waits', () => {
  it('caps Retry-After and RateLimit waits at five minutes, and says so', () => {
    assert.deepEqual(cappedWait(2_000), {ms: 2_000, words: '2.0s'})
    const long = cappedWait(3_600_000)
    assert.equal(long.ms, MAX_SERVER_WAIT_MS)
    assert.equal(long.words, '300s (the server asked for 3600s; mtune waits at most 300s at a time, then asks again)')
    assert.equal(backoffDelay(1, () => 0.5, undefined, 3_600_000), MAX_SERVER_WAIT_MS)
  })
})

describe('failure policy (pure)', () => {
  const base: FailureFacts = {kind: 'transient', message: 'reset', disk: false, ranged: true, primary: true, others: false, signed: false, staleLink: false, renewing: false, renewedJustNow: false, sourceFailures: 1}
  it('ends the pull on a full disk, on a broken download that cannot resume, and on a changed file', () => {
    assert.deepEqual(decideFailure({...base, disk: true}), {do: 'fail', why: 'disk'})
    assert.deepEqual(decideFailure({...base, ranged: false}), {do: 'fail', why: 'not-resumable'})
    assert.deepEqual(decideFailure({...base, kind: 'changed'}), {do: 'fail', why: 'changed'})
    assert.deepEqual(decideFailure({...base, kind: 'changed', primary: false}), {do: 'drop', why: 'its file changed: reset'})
  })

  it('renews a refused signed link (joining a renewal under way), and retries a request sent with a stale one', () => {
    const refused = {...base, kind: 'fatal' as const, status: 403, signed: true}
    assert.deepEqual(decideFailure(refused), {do: 'renew', join: false, renew: true, otherwise: {do: 'fail', why: 'refused'}})
    assert.deepEqual(decideFailure({...refused, renewing: true, renewedJustNow: true, others: true}), {do: 'renew', join: true, renew: false, otherwise: {do: 'drop', why: 'reset'}})
    assert.deepEqual(decideFailure({...refused, staleLink: true}), {do: 'retry'})
    assert.deepEqual(decideFailure({...refused, signed: false}), {do: 'fail', why: 'refused'})
    assert.deepEqual(decideFailure({...refused, status: 500}), {do: 'fail', why: 'refused'})
  })

  it('throttles on 429/503; rests a failing source while others serve, and drops it after four in a row', () => {
    assert.deepEqual(decideFailure({...base, kind: 'throttle'}), {do: 'throttle'})
    assert.deepEqual(decideFailure({...base, others: true, sourceFailures: 3}), {do: 'rest'})
    assert.equal(decideFailure({...base, others: true, sourceFailures: SOURCE_FAILURE_LIMIT}).do, 'drop')
    assert.deepEqual(decideFailure(base), {do: 'retry'}, 'alone: retry, whatever the count')
    assert.deepEqual(decideFailure({...base, kind: 'bad-response'}), {do: 'retry'})
    assert.equal(decideFailure({...base, kind: 'bad-response', others: true}).do, 'drop')
  })
})
