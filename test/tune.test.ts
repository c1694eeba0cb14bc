import assert from 'node:assert/strict'
import {existsSync, readFileSync, readdirSync, statSync, writeFileSync, mkdirSync} from 'node:fs'
import {join, relative} from 'node:path'
import {describe, it} from 'node:test'
import {MtuneError} from '../src/lib/errors.js'
import {systemReader} from '../src/lib/system/reader.js'
import {STATE_PATH, loadState} from '../src/lib/tune/apply.js'
import {SYSCTL_CONF, UDEV_RULES} from '../src/lib/tune/persist.js'
import {MAX_BUFFER, MIN_BUFFER, recommend, type Knob} from '../src/lib/tune/recommend.js'
import {gatherTuneFacts, tune, type TuneOptions} from '../src/lib/tune/run.js'
import {runCli} from './support/cli.js'
import {fakeKernel} from './support/fake-kernel.js'
import {hddBox, nvmeGpuServer} from './support/system-fixtures.js'

const Gbit = 1.25e8

function setup(root: string, options: {readOnly?: string[]} = {}) {
  const kernel = fakeKernel(root, options)
  const r = systemReader({root, env: {}, run: async (cmd, args) => kernel.run(cmd, args)})
  const run = (o: Partial<TuneOptions>) => tune(r, kernel, {path: '/srv/models', uid: 0, ...o})
  return {kernel, r, run}
}

/** Every file of a tree with its bytes, for before/after comparisons. */
function snapshot(root: string): Map<string, string> {
  const files = new Map<string, string>()
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name)
      const info = statSync(path, {throwIfNoEntry: false})
      if (!info) continue
      if (info.isDirectory()) walk(path)
      else files.set(relative(root, path), readFileSync(path, 'latin1'))
    }
  }
  walk(root)
  return files
}

const knob = (knobs: Knob[], id: string) => {
  const k = knobs.find((x) => x.id === id)
  assert.ok(k, `knob ${id}`)
  return k
}

describe('tune recommendations', () => {
  const facts = (bandwidth: number, rtt: number) => gatherTuneFacts(systemReader({root: hddBox(), env: {}}), {path: '/', bandwidthBps: bandwidth, rttMs: rtt})

  it('1 Gbit/s at 20 ms: BDP 2.5 MB, so the 16 MiB floor', () => {
    const k = recommend(facts(Gbit, 20))
    assert.equal(knob(k, 'net.core.rmem_max').recommended, String(MIN_BUFFER))
    assert.equal(knob(k, 'net.ipv4.tcp_rmem').recommended, `4096 131072 ${MIN_BUFFER}`)
    assert.match(knob(k, 'net.core.rmem_max').reason, /1 Gbit\/s x 20 ms = 2\.4 MiB BDP/)
  })

  it('10 Gbit/s at 100 ms: 2 x 125 MB', () => {
    const k = recommend(facts(10 * Gbit, 100))
    assert.equal(knob(k, 'net.core.rmem_max').recommended, '250000000')
    assert.equal(knob(k, 'net.core.wmem_max').recommended, '250000000')
    assert.equal(knob(k, 'net.ipv4.tcp_wmem').recommended, '4096 16384 250000000')
  })

  it('100 Gbit/s at 200 ms: capped at 2 GiB - 1', () => {
    const k = recommend(facts(100 * Gbit, 200))
    assert.equal(knob(k, 'net.core.rmem_max').recommended, String(MAX_BUFFER))
  })

  it('the rest of the network and the disk, with reasons and commands', () => {
    const k = recommend(facts(Gbit, 20))
    assert.equal(knob(k, 'net.ipv4.tcp_congestion_control').recommended, 'bbr')
    assert.deepEqual(knob(k, 'net.ipv4.tcp_congestion_control').commands, ['modprobe tcp_bbr', 'sysctl -w net.ipv4.tcp_congestion_control="bbr"'])
    assert.equal(knob(k, 'net.core.default_qdisc').recommended, 'fq')
    assert.equal(knob(k, 'enp3s0.qdisc').commands[0], 'tc qdisc replace dev enp3s0 root fq')
    assert.equal(knob(k, 'net.ipv4.tcp_slow_start_after_idle').recommended, '0')
    assert.equal(knob(k, 'sda.scheduler').recommended, 'mq-deadline')
    assert.equal(knob(k, 'sda.read_ahead_kb').recommended, '4096')
    assert.deepEqual(recommend(facts(Gbit, 20), 'io').map((x) => x.id), ['sda.scheduler', 'sda.read_ahead_kb'])
  })

  it('does not recommend fq where the kernel has no sch_fq', () => {
    const f = facts(Gbit, 20)
    const k = recommend({...f, network: {...f.network, fqModule: false}})
    assert.equal(knob(k, 'net.core.default_qdisc').action, 'unavailable')
    assert.ok(!k.some((x) => x.kind === 'qdisc'), 'nor a tc command for the interface')
  })

  it('never lowers a value that is already higher', () => {
    const f = gatherTuneFacts(systemReader({root: nvmeGpuServer(), env: {}}), {path: '/models', bandwidthBps: 10 * Gbit, rttMs: 100})
    const k = recommend(f)
    for (const id of ['net.core.rmem_max', 'net.ipv4.tcp_rmem', 'net.ipv4.tcp_congestion_control', 'nvme0n1.scheduler', 'nvme0n1.read_ahead_kb']) {
      assert.equal(knob(k, id).action, 'keep', id)
    }
    assert.equal(knob(k, 'net.core.rmem_max').recommended, '536870912')
  })
})

describe('tune --apply, --persist, --rollback', () => {
  it('applies, reads back, and rolls back to the original bytes', async () => {
    const root = hddBox()
    const before = snapshot(root)
    const {kernel, r, run} = setup(root)
    const applied = await run({apply: true, bandwidthBps: 10 * Gbit, rttMs: 100})
    assert.ok(applied.results.length > 8)
    for (const res of applied.results) assert.ok(['applied', 'unchanged'].includes(res.status), `${res.id}: ${res.status} ${res.error ?? ''}`)
    assert.equal(r.read('/proc/sys/net/core/rmem_max'), '250000000\n')
    assert.equal(r.read('/proc/sys/net/ipv4/tcp_rmem'), '4096\t131072\t250000000\n')
    assert.match(r.read('/sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda/queue/scheduler')!, /\[mq-deadline\]/)
    assert.equal(kernel.qdisc, 'fq')
    assert.ok(existsSync(join(root, STATE_PATH)), 'originals saved on disk')

    const back = await run({rollback: true})
    assert.ok(back.results.every((x) => x.status === 'restored'), JSON.stringify(back.results))
    assert.equal(kernel.qdisc, 'fq_codel')
    const after = snapshot(root)
    assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), 'no file left behind (state removed)')
    for (const [path, bytes] of before) assert.equal(after.get(path), bytes, `${path} restored byte for byte`)
  })

  it('applying twice keeps the first originals; rolling back twice is harmless', async () => {
    const root = hddBox()
    const before = snapshot(root)
    const {run} = setup(root)
    await run({apply: true, bandwidthBps: 10 * Gbit, rttMs: 100})
    const again = await run({apply: true, bandwidthBps: 10 * Gbit, rttMs: 100})
    assert.ok(again.results.every((x) => x.status === 'unchanged' || x.id.endsWith('.qdisc')), 'a second apply changes nothing')
    assert.equal(loadState(systemReader({root}))!.originals['net.core.rmem_max'].value, '212992\n', 'the saved original is still the true one')
    await run({rollback: true})
    const second = await run({rollback: true})
    assert.equal(second.nothingToRollBack, true)
    for (const [path, bytes] of before) assert.equal(snapshot(root).get(path), bytes, path)
  })

  it('reports a read-only key and applies the rest', async () => {
    const root = hddBox()
    const {run} = setup(root, {readOnly: ['/proc/sys/net/core/rmem_max']})
    const report = await run({apply: true, bandwidthBps: Gbit, rttMs: 20})
    const failed = report.results.filter((x) => x.status === 'failed')
    assert.deepEqual(failed.map((x) => x.id), ['net.core.rmem_max'])
    assert.match(failed[0].error!, /not writable here \(EROFS/)
    assert.equal(report.results.find((x) => x.id === 'net.core.wmem_max')!.status, 'applied')
    const saved = loadState(systemReader({root}))!.originals
    assert.ok(!('net.core.rmem_max' in saved), 'a write that failed leaves nothing to roll back')
    assert.ok('net.core.wmem_max' in saved)
  })

  it('refuses to write without root, and writes nothing', async () => {
    const root = hddBox()
    const before = snapshot(root)
    const {run, kernel} = setup(root)
    for (const mode of [{apply: true}, {persist: true}, {rollback: true}]) {
      await assert.rejects(run({...mode, uid: 1000}), (e: unknown) => e instanceof MtuneError && e.exitCode === 6 && /needs root: run it with sudo/.test(e.message))
    }
    assert.equal(kernel.writes.length, 0)
    assert.deepEqual(snapshot(root), before)
    const suggested = await run({uid: 1000})
    assert.equal(suggested.mode, 'suggest', 'without --apply anyone may ask')
  })

  it('--persist writes sysctl.d and a udev rule with an undo header, and rollback removes them', async () => {
    const root = hddBox()
    mkdirSync(join(root, 'etc/udev/rules.d'), {recursive: true})
    writeFileSync(join(root, UDEV_RULES), '# an older rule of the admin\n')
    const {run} = setup(root)
    const report = await run({apply: true, persist: true, bandwidthBps: 10 * Gbit, rttMs: 100})
    assert.deepEqual(report.persisted, [SYSCTL_CONF, UDEV_RULES])
    const conf = readFileSync(join(root, SYSCTL_CONF), 'utf8')
    assert.match(conf, /^# Written by mtune tune --persist on .*\n# Undo: sudo mtune tune --rollback/)
    assert.match(conf, /^net\.core\.rmem_max = 250000000$/m)
    assert.match(conf, /^net\.ipv4\.tcp_rmem = 4096 131072 250000000$/m)
    assert.match(conf, /^net\.ipv4\.tcp_congestion_control = bbr$/m)
    const rules = readFileSync(join(root, UDEV_RULES), 'utf8')
    assert.match(rules, /^ACTION=="add\|change", SUBSYSTEM=="block", KERNEL=="sda", ATTR\{queue\/scheduler\}="mq-deadline", ATTR\{queue\/read_ahead_kb\}="4096"$/m)
    const back = await run({rollback: true})
    assert.deepEqual(back.removed.sort(), [SYSCTL_CONF, UDEV_RULES].sort())
    assert.ok(!existsSync(join(root, SYSCTL_CONF)))
    assert.equal(readFileSync(join(root, UDEV_RULES), 'utf8'), '# an older rule of the admin\n', "the admin's file is put back as it was")
  })
})

describe('mtune tune (CLI)', () => {
  it('suggests on this machine without writing, with --json', async () => {
    const r = await runCli(['tune', '--bandwidth', '10Gbit', '--rtt', '80', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const doc = JSON.parse(r.stdout)
    assert.equal(doc.mode, 'suggest')
    assert.equal(doc.link.source, 'flags')
    assert.ok(doc.knobs.every((k: Knob) => ['change', 'keep', 'unavailable'].includes(k.action) && k.reason && k.commands.length > 0))
  })

  it('validates user values and writes nothing on bad input', async () => {
    for (const args of [['--rtt', '0'], ['--rtt', 'fast'], ['--rtt', '20000'], ['--bandwidth', '0'], ['--bandwidth', 'lots'], ['--only', 'cpu'], ['--rollback', '--apply']]) {
      const r = await runCli(['tune', ...args, '--apply'].filter((x, i, a) => !(x === '--apply' && a.indexOf('--apply') !== i)))
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    }
  })
})
