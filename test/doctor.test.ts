import assert from 'node:assert/strict'
import {once} from 'node:events'
import {chmodSync, mkdirSync, readFileSync, statfsSync, writeFileSync} from 'node:fs'
import {createServer, type AddressInfo, type Socket} from 'node:net'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {doctorArgs} from '../src/lib/doctor/args.js'
import {headroom, type DoctorFacts} from '../src/lib/doctor/checks.js'
import type {Finding} from '../src/lib/doctor/finding.js'
import type {MtuneError} from '../src/lib/errors.js'
import {modelSize} from '../src/lib/doctor/model-size.js'
import {decide, gatherFacts} from '../src/lib/doctor/run.js'
import {readBlock, readDisk, readGpus} from '../src/lib/system/facts.js'
import {systemReader, type SystemReader} from '../src/lib/system/reader.js'
import type {SiFacts} from '../src/lib/system/si.js'
import {shownValue} from '../src/lib/ui/doctor-output.js'
import {runCli} from './support/cli.js'
import {container, fakeNvidiaSmi, hddBox, lvmOnPartition, nvmeGpuServer} from './support/system-fixtures.js'
import {tempDir} from './support/temp.js'

const GiB = 1024 ** 3
const noCommands: SystemReader['run'] = async () => undefined
/** systeminformation answers nothing unless a test gives its captured answers. */
const noSi = {graphics: async () => undefined, mem: async () => undefined}
const reader = (root: string, freeBytes = 2000 * GiB, env: NodeJS.ProcessEnv = {}, extra: {platform?: NodeJS.Platform; si?: typeof noSi | SiFacts} = {}) =>
  systemReader({root, env, run: noCommands, si: noSi, ...extra, statfs: () => ({bavail: freeBytes / 4096, bsize: 4096, blocks: (4000 * GiB) / 4096, files: 1e7, ffree: 9e6})})

const byId = (findings: Finding[], id: string) => {
  const f = findings.find((x) => x.id === id)
  assert.ok(f, `finding ${id} (have ${findings.map((x) => x.id).join(', ')})`)
  return f
}

describe('doctor on fixture machines', () => {
  it('an NVMe GPU server with BBR passes the network and I/O checks', async () => {
    const r = reader(nvmeGpuServer())
    const facts = await gatherFacts(r, {path: '/models/llama', size: 140 * GiB, bandwidthBps: 1.25e9, rttMs: 100})
    const findings = decide(facts)
    assert.equal(facts.disk.mount?.fsType, 'xfs')
    assert.deepEqual(facts.block.chain, ['nvme0n1p1', 'nvme0n1'])
    for (const id of ['network.congestion', 'network.qdisc', 'network.buffers', 'network.window_scaling', 'network.slow_start_after_idle', 'io.nvme0n1.scheduler', 'io.nvme0n1.read_ahead', 'disk.space', 'disk.filesystem', 'memory.ram']) {
      assert.equal(byId(findings, id).status, 'pass', `${id}: ${byId(findings, id).summary}`)
    }
    assert.match(byId(findings, 'network.interface').summary, /eth0, 100 Gbit\/s, MTU 9000/)
    assert.equal(byId(findings, 'env.open_files').status, 'pass')
  })

  it('an HDD box with distribution defaults gets a fix for each setting', async () => {
    const r = reader(hddBox())
    const facts = await gatherFacts(r, {path: '/srv/models', bandwidthBps: 1.25e8, rttMs: 50})
    const findings = decide(facts)
    const warn = (id: string, fix: RegExp) => {
      const f = byId(findings, id)
      assert.equal(f.status, 'warn', `${id}: ${f.summary}`)
      assert.match(f.fix ?? '', fix)
    }
    warn('network.congestion', /tcp_congestion_control=bbr/)
    warn('network.qdisc', /default_qdisc=fq.*tc qdisc replace dev enp3s0 root fq/)
    // The same box with a multi-queue NIC: its fix keeps mq and gives each queue fq.
    const multi = hddBox()
    for (let q = 0; q < 8; q++) mkdirSync(join(multi, `sys/class/net/enp3s0/queues/tx-${q}`), {recursive: true})
    const mq = byId(decide(await gatherFacts(reader(multi), {path: '/srv/models', bandwidthBps: 1.25e8, rttMs: 50})), 'network.qdisc')
    assert.match(mq.fix ?? '', /for each of its 8 queues: sudo tc qdisc replace dev enp3s0 parent :N fq/)
    assert.doesNotMatch(mq.fix ?? '', /root fq/)
    warn('network.buffers', /raises net.core.rmem_max and net.ipv4.tcp_rmem to 12500000 bytes/)
    assert.match(byId(findings, 'network.buffers').summary, /1 Gbit\/s x 50 ms = 5\.96 MiB BDP|1 Gbit\/s x 50 ms = 6\.0 MiB BDP/)
    warn('network.slow_start_after_idle', /tcp_slow_start_after_idle=0/)
    warn('io.sda.scheduler', /echo mq-deadline \| sudo tee \/sys\/block\/sda\/queue\/scheduler/)
    warn('io.sda.read_ahead', /4096/)
    warn('env.open_files', /ulimit -n/)
    assert.equal(facts.block.disks[0].type, 'hdd')
  })

  it('a container with most of /sys missing reports unknowns, never crashes', async () => {
    const r = reader(container())
    const facts = await gatherFacts(r, {path: '/models', size: 10 * GiB})
    const findings = decide(facts)
    assert.equal(byId(findings, 'network.congestion').status, 'unknown')
    assert.equal(byId(findings, 'network.buffers').status, 'unknown')
    assert.match(byId(findings, 'io.device').summary, /none: overlay filesystem/)
    assert.equal(byId(findings, 'disk.filesystem').status, 'warn')
    assert.match(byId(findings, 'disk.filesystem').fix!, /mount a volume/)
    assert.equal(byId(findings, 'memory.ram').status, 'pass')
    assert.ok(findings.every((f) => f.summary.length > 0))
  })

  it('follows LVM on a partition down to the disk', () => {
    const r = reader(lvmOnPartition())
    const disk = readDisk(r, '/data/models')
    assert.equal(disk.mount?.majorMinor, '253:0')
    const block = readBlock(r, disk.mount)
    assert.deepEqual(block.chain, ['dm-0', 'sdb2', 'sdb'])
    assert.equal(block.disks.length, 1)
    assert.equal(block.disks[0].name, 'sdb')
    assert.equal(block.disks[0].type, 'ssd')
    const findings = decide({...baseFacts(), block}, ['io'])
    assert.equal(byId(findings, 'io.sdb.scheduler').status, 'warn', 'SATA SSD: mq-deadline recommended over none')
  })
})

/** Facts with nothing to complain about, for checks judged one at a time. */
function baseFacts(over: Partial<DoctorFacts> = {}): DoctorFacts {
  return {
    size: undefined,
    disk: {path: '/m', directory: '/m', freeBytes: 1000 * GiB, totalBytes: 2000 * GiB, inodesFree: 1e6, inodesTotal: 2e6, writable: true, mount: {mountPoint: '/', fsType: 'ext4', source: '/dev/x', majorMinor: '8:1'}},
    block: {chain: [], disks: []},
    memory: {totalBytes: 64 * GiB, availableBytes: 60 * GiB, swapTotalBytes: 0, swapFreeBytes: 0},
    gpus: {gpus: [], notes: []},
    network: {},
    env: {proxies: {}, hf: {}},
    link: {source: 'unknown'},
    ...over,
  }
}

describe('--verbose values', () => {
  it('rounds measured numbers and adds binary units to sizes and rates', () => {
    assert.equal(shownValue(1121027361.8182502, 'bytes/s'), '1121027362 bytes/s (1.0 GiB/s)')
    assert.equal(shownValue(369940, 'bytes'), '369940 bytes (361 KiB)')
    assert.equal(shownValue(0.3333333, 'ms'), '0.333 ms')
    assert.equal(shownValue(512, 'bytes'), '512 bytes')
    assert.equal(shownValue('bbr'), 'bbr')
    assert.equal(shownValue(true), 'true')
  })
})

describe('disk: a --path not made yet', () => {
  it('is judged by the directory it would be created in, and says so', () => {
    const writable = (path: string, ok: boolean) =>
      byId(decide(baseFacts({disk: {...baseFacts().disk, path, directory: '/data', writable: ok}}), ['disk']), 'disk.writable')
    assert.equal(writable('/data', true).summary, '/data is writable')
    assert.equal(writable('/data/models/new', true).summary, '/data is writable (/data/models/new does not exist yet: it would be created there)')
    const file = byId(decide(baseFacts({disk: {...baseFacts().disk, path: '/data/model.gguf/x', directory: '/data', fileInTheWay: '/data/model.gguf'}}), ['disk']), 'disk.writable')
    assert.deepEqual([file.status, file.summary], ['fail', '/data/model.gguf is a file, not a directory: nothing can be written to /data/model.gguf/x'])
    const refused = writable('/data/models/new', false)
    assert.equal(refused.status, 'fail')
    assert.match(refused.summary, /^\/data is not writable by this user \(\/data\/models\/new does not exist yet/)
  })

  it("says what is loaded of what is pulled only where the two read apart (not a repo's few KB of configs)", () => {
    const ram = (size: number, loads: number) => byId(decide(baseFacts({size, loads}), ['memory']), 'memory.ram').summary
    assert.match(ram(6 * 1024 ** 2 + 14, 6 * 1024 ** 2), /, model 6\.0 MiB$/)
    assert.match(ram(15 * 1024 ** 2, 12 * 1024 ** 2), /, model 12\.0 MiB loaded, of 15\.0 MiB pulled$/)
  })

  it('fails a kernel filesystem (--path /proc/...), which root may open but no model can be written to', () => {
    const facts = baseFacts({disk: {...baseFacts().disk, path: '/proc/models', directory: '/proc', writable: true, mount: {fsType: 'proc', mountPoint: '/proc', source: 'proc', majorMinor: '0:22'}}})
    const findings = decide(facts, ['disk'])
    assert.deepEqual([byId(findings, 'disk.filesystem').status, byId(findings, 'disk.filesystem').summary], ['fail', 'proc on /proc: a kernel filesystem, not a disk'])
    assert.equal(byId(findings, 'disk.writable').status, 'fail', 'writable by access(2), as root, all the same')
  })
})

describe('env: proxy reachable', () => {
  it('fails a proxy that takes no connections, and passes one that does', () => {
    const facts = baseFacts({env: {proxies: {HTTPS_PROXY: 'http://proxy.corp:3128', NO_PROXY: 'localhost'}, hf: {}}})
    const reach = (proxies: NonNullable<typeof facts.proxies>) => decide({...facts, proxies}, ['env']).filter((f) => f.id === 'env.proxy_reachable')
    const down = reach([{proxy: 'proxy.corp:3128', answers: false, error: 'connection refused'}])
    assert.deepEqual(down.map((f) => [f.status, f.summary]), [['fail', 'proxy.corp:3128 does not take connections (connection refused)']])
    assert.match(down[0].fix ?? '', /correct the host and port in HTTPS_PROXY\/HTTP_PROXY\/ALL_PROXY/)
    const up = reach([{proxy: 'proxy.corp:3128', answers: true, ms: 2}])
    assert.deepEqual(up.map((f) => [f.status, f.summary]), [['pass', 'proxy.corp:3128 takes connections (2 ms)']])
    assert.deepEqual(reach([]), [])
  })
})

describe('env: TLS trust', () => {
  const trust = (caBundle?: {path: string; readable: boolean}) => decide(baseFacts({env: {proxies: {}, hf: {}, caBundle}}), ['env']).find((f) => f.id === 'env.tls')!
  it("names the CAs https is verified against: Node's, and the bundle added to them", () => {
    const system = trust({path: '/etc/ssl/certs/ca-certificates.crt', readable: true})
    assert.equal(system.status, 'pass')
    assert.equal(system.summary, "Node's public CAs and /etc/ssl/certs/ca-certificates.crt")
    const none = trust(undefined)
    assert.equal(none.status, 'info')
    assert.match(none.fix ?? '', /NODE_EXTRA_CA_CERTS=\/path\/to\/ca\.pem/)
    const broken = trust({path: '/etc/corp/ca.pem', readable: false})
    assert.equal(broken.status, 'warn')
    assert.equal(broken.summary, "NODE_EXTRA_CA_CERTS=/etc/corp/ca.pem cannot be read: only Node's public CAs are trusted")
  })
})

describe('env: credentials from ~/.netrc', () => {
  const netrc = (n?: {path: string; logins: number; openToOthers: boolean}) => decide(baseFacts({env: {proxies: {}, hf: {}, netrc: n}}), ['env']).find((f) => f.id === 'env.netrc')
  it('says whose logins pull will send, and warns of a file other users can read', () => {
    assert.equal(netrc(undefined), undefined, 'no file, no line')
    const ok = netrc({path: '/home/ops/.netrc', logins: 2, openToOthers: false})!
    assert.deepEqual([ok.status, ok.summary], ['pass', '/home/ops/.netrc: 2 logins, sent to their hosts for URLs without their own'])
    const open = netrc({path: '/home/ops/.netrc', logins: 1, openToOthers: true})!
    assert.deepEqual([open.status, open.summary, open.fix], ['warn', '/home/ops/.netrc: 1 login, sent to its host for URLs without their own; other users can read it', 'chmod 600 /home/ops/.netrc'])
  })

  it('reads the file NETRC names, as pull does', async () => {
    const d = tempDir('netrc')
    writeFileSync(join(d, 'netrc'), 'machine mirror.example login ops password x\n', {mode: 0o644})
    chmodSync(join(d, 'netrc'), 0o644)
    const r = await runCli(['doctor', 'env', '--json'], {NETRC: join(d, 'netrc')})
    const found = JSON.parse(r.stdout).findings.find((f: {id: string}) => f.id === 'env.netrc')
    assert.deepEqual([found.status, found.fix], ['warn', `chmod 600 ${join(d, 'netrc')}`])
  })
})

describe('env: proxies', () => {
  const proxy = (proxies: Record<string, string>) => decide(baseFacts({env: {proxies, hf: {}}}), ['env']).find((f) => f.id === 'env.proxy')!
  it('passes a consistent proxy with NO_PROXY; ALL_PROXY alone is read, as curl reads it', () => {
    assert.equal(proxy({HTTPS_PROXY: 'http://p:3128', NO_PROXY: 'localhost,127.0.0.1'}).status, 'pass')
    const all = proxy({ALL_PROXY: 'socks5://ops:secret@p:1080', NO_PROXY: 'localhost'})
    assert.equal(all.status, 'pass')
    assert.equal(all.summary, 'ALL_PROXY=socks5://ops:***@p:1080; NO_PROXY=localhost')
    assert.doesNotMatch(JSON.stringify(all), /secret/)
    assert.equal(proxy({ALL_PROXY: 'socks5://p:1080', all_proxy: 'socks5://q:1080', NO_PROXY: 'localhost'}).status, 'warn', 'two spellings that disagree')
    assert.equal(proxy({ALL_PROXY: 'socks5://p:1080', https_proxy: 'http://p:3128', NO_PROXY: 'localhost'}).status, 'pass', 'with HTTPS_PROXY set too, it is that one')
    assert.equal(proxy({HTTPS_PROXY: 'http://p:3128', https_proxy: 'http://q:3128', NO_PROXY: 'localhost'}).status, 'warn', 'two spellings that disagree')
    const socks4 = proxy({HTTPS_PROXY: 'socks4://ops:secret@p:1080', NO_PROXY: 'localhost'})
    assert.equal(socks4.status, 'fail', 'every download would stop on it')
    assert.equal(socks4.summary, 'HTTPS_PROXY=socks4://ops:***@p:1080: socks4:// proxies are not supported: give an http://, https:// or socks5:// proxy')
    assert.equal(proxy({HTTPS_PROXY: 'p:3128', NO_PROXY: 'localhost'}).status, 'pass', 'no scheme: an http proxy, as curl reads it')
    assert.equal(proxy({HTTPS_PROXY: 'http://p:3128', NO_PROXY: '.svc,127.0.0.0/8'}).status, 'pass', 'loopback covered by a range')
    assert.equal(proxy({HTTPS_PROXY: 'http://p:3128', NO_PROXY: '.svc,10.0.0.0/8'}).summary, 'HTTPS_PROXY=http://p:3128; NO_PROXY lacks localhost')
  })
})

describe('the model\'s size, asked of the network', () => {
  it('says the server did not answer within the deadline, not that an operation was aborted', async () => {
    const held: Socket[] = []
    const silent = createServer((socket) => void held.push(socket.on('error', () => {})))
    silent.listen(0, '127.0.0.1')
    await once(silent, 'listening')
    try {
      const r = await modelSize(`http://127.0.0.1:${(silent.address() as AddressInfo).port}/model.gguf`, {timeoutMs: 500})
      assert.equal(r.size, undefined)
      assert.equal(r.note, 'size unknown (no answer within 0.5 s)')
    } finally {
      for (const socket of held) socket.destroy()
      silent.close()
    }
  })
})

describe('the size of a model on disk (doctor --model PATH)', () => {
  it('counts what a runtime loads: safetensors over other formats, one GGUF variant, the file itself', async () => {
    const d = tempDir('on-disk')
    mkdirSync(join(d, 'hf', 'original'), {recursive: true})
    writeFileSync(join(d, 'hf', 'model.safetensors'), Buffer.alloc(3000))
    writeFileSync(join(d, 'hf', 'pytorch_model.bin'), Buffer.alloc(5000))
    writeFileSync(join(d, 'hf', 'original', 'consolidated.00.pth'), Buffer.alloc(7000))
    writeFileSync(join(d, 'hf', 'config.json'), '{}')
    assert.deepEqual(await modelSize(join(d, 'hf')), {size: 3000, loads: 3000, missing: 0, path: join(d, 'hf')})
    mkdirSync(join(d, 'gguf'))
    writeFileSync(join(d, 'gguf', 'M-Q4_K_M.gguf'), Buffer.alloc(4000))
    writeFileSync(join(d, 'gguf', 'M-Q8_0-00001-of-00002.gguf'), Buffer.alloc(4000))
    writeFileSync(join(d, 'gguf', 'M-Q8_0-00002-of-00002.gguf'), Buffer.alloc(3000))
    writeFileSync(join(d, 'gguf', 'mmproj-M-f16.gguf'), Buffer.alloc(500))
    const gguf = await modelSize(join(d, 'gguf'))
    assert.equal(gguf.size, 7500, 'the largest variant, its two shards, and the projector')
    assert.match(gguf.advice?.[0] ?? '', /2 GGUF variants here and a runtime loads one: the largest \(Q8_0, 6\.8 KiB\) is assumed for RAM and VRAM; give the one to load as --model PATH/)
    assert.deepEqual(await modelSize(join(d, 'gguf', 'M-Q4_K_M.gguf')), {size: 4000, loads: 4000, missing: 0, path: join(d, 'gguf')})
    const r = await runCli(['doctor', 'disk', 'memory', '--model', join(d, 'hf'), '--json'])
    const doc = JSON.parse(r.stdout)
    assert.deepEqual([doc.model.size, doc.model.missing, doc.path], [3000, 0, join(d, 'hf')])
    assert.match(doc.findings.find((f: {id: string}) => f.id === 'disk.space').summary, /the model \(2\.9 KiB\) is on disk already/)
    // The model given as pull and verify take their SOURCE, among the checks.
    const positional = JSON.parse((await runCli(['doctor', 'disk', join(d, 'hf'), 'memory', '--json'])).stdout)
    assert.deepEqual([positional.model.source, positional.model.size, positional.path], [join(d, 'hf'), 3000, join(d, 'hf')])
    assert.deepEqual([...new Set(positional.findings.map((f: {group: string}) => f.group))].sort(), ['disk', 'memory'])
  })

  it('takes a model among the checks, as pull takes its SOURCE, and says what it cannot take', () => {
    const here = new Set(['/models/llama', 'disk'])
    const exists = (p: string) => here.has(p)
    assert.deepEqual(doctorArgs(['hf://Qwen/Qwen2.5-7B', 'GPU'], {exists}), {groups: ['gpu'], model: 'hf://Qwen/Qwen2.5-7B'})
    assert.deepEqual(doctorArgs(['/models/llama'], {exists}), {groups: [], model: '/models/llama'})
    assert.deepEqual(doctorArgs(['disk'], {exists, model: 'ollama://llama3'}), {groups: ['disk'], model: 'ollama://llama3'}, 'a group name stays a group, even where a folder has its name')
    assert.deepEqual(doctorArgs([], {exists, size: '70G'}), {groups: [], model: undefined})
    const refused = (args: string[], o: {model?: string; size?: string}, message: RegExp) =>
      assert.throws(() => doctorArgs(args, {exists, ...o}), (e: MtuneError) => e.exitCode === 2 && message.test(e.message))
    refused(['disks'], {}, /^unknown check "disks": choose from disk, memory, gpu, network, io, env, or give a model as a URL, hf:\/\/, ollama:\/\/, modelscope:\/\/ or a path that exists$/)
    refused(['hf://a/b', 'hf://c/d'], {}, /one model at a time, not 2 \(hf:\/\/a\/b, hf:\/\/c\/d\)/)
    refused(['hf://a/b'], {model: 'hf://c/d'}, /two models given: "hf:\/\/a\/b" and --model hf:\/\/c\/d/)
    refused(['hf://a/b'], {size: '70G'}, /a model \("hf:\/\/a\/b"\) and --size given/)
  })

  it('refuses a --size with its unit left out, which would pass every check, and an --endpoint with no hub model', async () => {
    const r = await runCli(['doctor', 'disk', '--size', '70'])
    assert.deepEqual([r.code, r.stderr.trim()], [2, 'Error: --size 70 is 70 bytes, too small for a model: give a unit, e.g. 70G'])
    // Nor is --endpoint left to mean nothing.
    const alone = await runCli(['doctor', 'disk', '--size', '70G', '--endpoint', 'https://hf-mirror.com'])
    assert.deepEqual([alone.code, alone.stderr.trim()], [2, 'Error: --endpoint is the hub an hf:// or modelscope:// model is looked up on, and no model was given: mtune doctor hf://ORG/NAME --endpoint https://hf-mirror.com'])
  })
})

describe('size-based checks at their boundaries', () => {
  const size = 100 * GiB
  const space = (free: number) => byId(decide(baseFacts({size, disk: {...baseFacts().disk, freeBytes: free}}), ['disk']), 'disk.space')

  it('disk: short fails, tight warns, room passes', () => {
    assert.equal(space(size - 1).status, 'fail')
    assert.equal(space(size).status, 'warn')
    assert.equal(space(size + headroom(size) - 1).status, 'warn')
    assert.equal(space(size + headroom(size)).status, 'pass')
    assert.equal(headroom(size), 5 * GiB, '5% of the model')
    assert.equal(headroom(GiB), GiB, 'at least 1 GiB')
  })

  it('disk: a model partly or wholly on disk needs only what is missing, and says so', () => {
    const facts = baseFacts({size, disk: {...baseFacts().disk, freeBytes: 50 * GiB}})
    const partly = byId(decide(facts, ['disk'], 30 * GiB), 'disk.space')
    assert.equal(partly.status, 'pass')
    assert.match(partly.summary, /model needs 30\.0 GiB more of its 100 GiB \(pulls write in place/)
    const whole = byId(decide(facts, ['disk'], 0), 'disk.space')
    assert.equal(whole.status, 'pass')
    assert.match(whole.summary, /, the model \(100 GiB\) is on disk already$/)
    assert.equal(byId(decide(facts, ['disk'], 60 * GiB), 'disk.space').status, 'fail', 'what is missing must fit')
  })

  it('RAM: up to half passes, more advises mmap, beyond RAM says so', () => {
    const ram = (model: number) => byId(decide(baseFacts({size: model}), ['memory']), 'memory.ram')
    assert.equal(ram(32 * GiB).status, 'pass')
    assert.equal(ram(32 * GiB + 1).status, 'warn')
    assert.match(ram(32 * GiB + 1).fix!, /memory-mapped/)
    assert.match(ram(64 * GiB + 1).summary, /larger than RAM/)
  })

  it('VRAM: fits, fits only in total, or says how much is offloaded', () => {
    const gpus = {gpus: [0, 1].map((i) => ({vendor: 'nvidia' as const, index: i, name: 'H100', memoryTotalBytes: 80 * GiB, memoryFreeBytes: 70 * GiB, driver: '550'})), notes: []}
    const vram = (model: number) => byId(decide(baseFacts({size: model, gpus}), ['gpu']), 'gpu.vram')
    assert.equal(vram(140 * GiB).status, 'pass')
    assert.match(vram(140 * GiB + 1).summary, /fits, but only 140 GiB is free now/)
    assert.match(vram(200 * GiB).summary, /does not fit; about 20% of its layers would run on the CPU/)
  })

  it('no GPU driver is information, not a failure', () => {
    const f = decide(baseFacts({size: GiB, gpus: {gpus: [], notes: ['nvidia-smi not found']}}), ['gpu'])
    assert.deepEqual(f.map((x) => x.status), ['info'])
  })
})

describe('GPU facts from nvidia-smi', () => {
  it('parses a multi-GPU answer', async () => {
    const csv = ['0, NVIDIA H100 80GB HBM3, 81559, 80000, 550.54.15', '1, NVIDIA H100 80GB HBM3, 81559, 1024, 550.54.15'].join('\n')
    const r = systemReader({root: container(), run: async (cmd) => (cmd === 'nvidia-smi' ? {stdout: csv, exitCode: 0} : undefined)})
    const facts = await readGpus(r)
    assert.equal(facts.gpus.length, 2)
    assert.deepEqual(facts.gpus[1], {vendor: 'nvidia', index: 1, name: 'NVIDIA H100 80GB HBM3', memoryTotalBytes: 81559 * 1024 * 1024, memoryFreeBytes: 1024 * 1024 * 1024, driver: '550.54.15'})
  })
})

describe('mtune doctor (CLI)', () => {
  it('reads a fake nvidia-smi on PATH and prints one line per GPU', async () => {
    const bin = fakeNvidiaSmi(['0, NVIDIA A100-SXM4-80GB, 81920, 81000, 535.104.05', '1, NVIDIA A100-SXM4-80GB, 81920, 81000, 535.104.05', '2, NVIDIA A100-SXM4-80GB, 81920, 81000, 535.104.05', '3, NVIDIA A100-SXM4-80GB, 81920, 500, 535.104.05'].join('\n'))
    const r = await runCli(['doctor', 'gpu', '--size', '200G'], {PATH: `${bin}:${process.env.PATH}`})
    assert.equal(r.code, 0, r.stderr)
    assert.equal((r.stdout.match(/\[•\] GPU \d: NVIDIA A100-SXM4-80GB, 80\.0 GiB/g) ?? []).length, 4)
    assert.match(r.stdout, /VRAM: 320 GiB of VRAM on 4 GPUs, model 200 GiB fits/)
  })

  it('env: tries each proxy the variables name, as a pull would reach it', async () => {
    const {startConnectProxy} = await import('./support/connect-proxy.js')
    const proxy = await startConnectProxy()
    const dead = createServer()
    dead.listen(0, '127.0.0.1')
    await once(dead, 'listening')
    const deadPort = (dead.address() as AddressInfo).port
    dead.close()
    try {
      const r = await runCli(['doctor', 'env', '--json'], {HTTPS_PROXY: proxy.url, ALL_PROXY: `socks5://127.0.0.1:${deadPort}`, NO_PROXY: 'localhost,127.0.0.1'})
      assert.equal(r.code, 1, r.stderr)
      const reach = JSON.parse(r.stdout).findings.filter((f: Finding) => f.id === 'env.proxy_reachable')
      assert.deepEqual(
        reach.map((f: Finding) => [f.status, f.summary.replace(/\(\d+ ms\)/, '(N ms)')]),
        [
          ['pass', `${new URL(proxy.url).host} takes connections (N ms)`],
          ['fail', `127.0.0.1:${deadPort} does not take connections (connection refused)`],
        ],
      )
    } finally {
      await proxy.close()
    }
  })

  it('--json gives a stable document, and exit 1 only when a check fails', async () => {
    const ok = await runCli(['doctor', 'memory', 'env', '--json'])
    assert.equal(ok.code, 0, ok.stderr)
    const doc = JSON.parse(ok.stdout)
    assert.deepEqual(Object.keys(doc).sort(), ['findings', 'link', 'model', 'path', 'size', 'summary', 'version'])
    assert.deepEqual(Object.keys(doc.summary).sort(), ['fail', 'info', 'pass', 'unknown', 'warn'])
    for (const f of doc.findings) {
      assert.match(f.id, /^(memory|env)\.[a-z_.0-9]+$/)
      assert.ok(['pass', 'warn', 'fail', 'info', 'unknown'].includes(f.status))
      assert.equal(typeof f.title, 'string')
      assert.equal(typeof f.summary, 'string')
      for (const v of Object.values(f.values) as Array<{value: unknown}>) assert.ok('value' in v)
    }
    const fail = await runCli(['doctor', 'disk', '--size', '5P', '--json'])
    assert.equal(fail.code, 1)
    assert.equal(JSON.parse(fail.stdout).findings.find((f: Finding) => f.id === 'disk.space').status, 'fail')
  })

  it('refuses bad input with exit 2', async () => {
    for (const args of [['doctor', 'bogus'], ['doctor', '--rtt', 'fast'], ['doctor', '--size', '12Q'], ['doctor', '--size', '1G', '--model', 'hf://a/b']]) {
      const r = await runCli(args)
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    }
  })

  it('on this machine, reports memory and disk as /proc/meminfo and statfs say, quickly', async () => {
    const started = performance.now()
    const r = await runCli(['doctor', 'disk', 'memory', '--path', '/tmp', '--json'])
    const seconds = (performance.now() - started) / 1000
    assert.equal(r.code, 0, r.stderr)
    const doc = JSON.parse(r.stdout)
    const total = Number(/^MemTotal:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))![1]) * 1024
    assert.equal(doc.findings.find((f: Finding) => f.id === 'memory.ram').values.total.value, total)
    const fs = statfsSync('/tmp')
    const free = fs.bavail * fs.bsize
    const reported = doc.findings.find((f: Finding) => f.id === 'disk.space').values.free.value
    // Other tests write files meanwhile: allow some drift.
    assert.ok(Math.abs(reported - free) < 2 * GiB, `reported ${reported}, statfs ${free}`)
    assert.ok(seconds < 10, `took ${seconds.toFixed(1)} s`)
  })
})

describe('doctor beyond NVIDIA and AMD, and on macOS (systeminformation)', () => {
  // Captured from systeminformation 5 on real machines, trimmed to the fields doctor reads.
  const intelLaptop: SiFacts = {
    graphics: async () => [{vendor: 'Intel Corporation', model: 'UHD Graphics 620', vram: 256, vramDynamic: true}],
    mem: async () => undefined,
  }
  const macM2: SiFacts = {
    graphics: async () => [{vendor: 'Apple', model: 'Apple M2 Max', vram: null, vramDynamic: true}],
    mem: async () => ({total: 64 * GiB, available: 40 * GiB, swaptotal: 2 * GiB, swapfree: 2 * GiB}),
  }

  it('reports an Intel GPU when neither nvidia-smi nor rocm-smi answers', async () => {
    const facts = await gatherFacts(reader(hddBox(), undefined, {}, {si: intelLaptop}), {path: '/srv/models', size: 4 * GiB, groups: ['gpu']})
    const gpu = decide(facts, ['gpu'])
    assert.match(byId(gpu, 'gpu.intel0').summary, /UHD Graphics 620, 256 MiB of unified memory/)
    assert.equal(byId(gpu, 'gpu.vram').status, 'warn', 'a 4 GiB model does not fit in 256 MiB')
  })

  it('on macOS: unified memory is what the model must fit in; Linux-only groups are not applicable', async () => {
    const root = tempDir('mac')
    const facts = await gatherFacts(reader(root, 500 * GiB, {}, {platform: 'darwin', si: macM2}), {path: root, size: 40 * GiB})
    const f = decide(facts)
    assert.match(byId(f, 'gpu.apple0').summary, /Apple M2 Max, 64\.0 GiB of unified memory/)
    assert.equal(byId(f, 'gpu.vram').status, 'pass', byId(f, 'gpu.vram').summary)
    assert.match(byId(f, 'memory.ram').summary, /64\.0 GiB total, 40\.0 GiB available/)
    assert.equal(byId(f, 'network.not_applicable').status, 'info')
    assert.match(byId(f, 'network.not_applicable').summary, /not applicable on macOS/)
    assert.match(byId(f, 'io.not_applicable').summary, /not applicable on macOS/)
    assert.equal(byId(f, 'disk.space').status, 'pass')
    assert.ok(!f.some((x) => x.status === 'unknown' && (x.group === 'network' || x.group === 'io')), 'not "unknown"')
  })

  it('stays under a second on Linux, systeminformation loaded only when needed', async () => {
    const started = performance.now()
    const r = await runCli(['doctor', '--json'])
    assert.equal(typeof JSON.parse(r.stdout).summary, 'object')
    // Generous: the whole process, Node's start included, on a busy 2-core machine.
    assert.ok(performance.now() - started < 5_000)
  })
})
