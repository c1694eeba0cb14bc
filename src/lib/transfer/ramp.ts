import {cpus} from 'node:os'
import {performance} from 'node:perf_hooks'
import type {ConnectionController, CpuLimit} from './connection-controller.js'
import {Meter} from './meter.js'
import {firstByteTime} from './piece-policy.js'

/**
 * The ramp: how many connections run, and when that changes. ConnectionController holds the
 * count and its rules (grow while it pays, halve on 429/503, hold at a server's limit); this
 * module feeds it: the first step up, taken early (FirstStepUp); whether a change has taken
 * effect and can be judged (StepInEffect); whether this machine, not the path, is the limit
 * (CpuHeadroom); and refusals that betray a server's limit per client (RefusalBursts). Ramp
 * wires them for the engine, which tells it what runs and asks for the target.
 */

/**
 * When the first step up from the initial connections is taken, and what it is judged by.
 *
 * Waiting for a clean baseline before stepping costs the whole ramp: on a server that caps
 * each connection, 16 connections fill part of the link until the step, and the added ones then
 * spend a round trip and the server's first-byte time before they add anything. So the step is
 * taken shortly after the first connections are all receiving, and the baseline is measured on
 * them in the time the added ones spend waiting for their first byte: until then they take
 * nothing from the path. That needs a server slow to answer, which the first connections show.
 * One that answers at once (nearby) costs little ramp: there the baseline is measured first and
 * the step taken after. If the added connections answer too soon for a fair measurement
 * anyway, the step is left unjudged rather than judged against a guess.
 */
export interface FirstStepTiming {
  /** After the last first byte, so that the first connections' initial burst is past. */
  delayMs: number
  /** A shorter window is too noisy to judge by. */
  minWindowMs: number
  /** Long enough: stop measuring even if the added connections are still silent. */
  maxWindowMs: number
}

export const FIRST_STEP_TIMING: FirstStepTiming = {delayMs: 50, minWindowMs: 60, maxWindowMs: 150}

/** Measured before the step, on a server that answers at once. */
const BASELINE_FIRST_MS = 100

export interface Started {
  startedAt: number
  firstByteAt?: number
  stopReason?: unknown
}

export type FirstStepUpdate =
  /** With the baseline where it was measured before the step. */
  | {kind: 'stepped'; from: number; to: number; baseline?: number}
  | {kind: 'measured'; baseline?: number; windowMs: number}
  /** Nothing yet: call again at this time (or sooner, on a first byte). */
  | {kind: 'wait'; at: number}
  | {kind: 'idle'}

export class FirstStepUp {
  private phase: 'waiting' | 'baseline-first' | 'measuring' | 'done' = 'waiting'
  private window?: {t: number; bytes: number}

  constructor(
    private readonly controller: ConnectionController,
    private readonly timing: FirstStepTiming = FIRST_STEP_TIMING,
  ) {}

  /**
   * @param connections those running now
   * @param received bytes received so far, not counting those of a connection whose first
   *   byte is being reported at this moment
   * @param room whether more connections would have anything to fetch
   */
  update(now: number, connections: Iterable<Started>, received: number, room: boolean): FirstStepUpdate {
    if (this.phase === 'waiting') return this.waiting(now, [...connections].filter((c) => !c.stopReason), received, room)
    if (this.phase === 'measuring') return this.measuring(now, connections, received)
    if (this.phase === 'baseline-first') return this.baselineFirst(now, received, room)
    return {kind: 'idle'}
  }

  private waiting(now: number, running: Started[], received: number, room: boolean): FirstStepUpdate {
    const from = this.controller.target
    if (this.controller.stepped) {
      // Some first connections were so slow to answer that the settle-time judgement stepped first.
      this.phase = 'done'
      return {kind: 'idle'}
    }
    if (running.length < from || running.some((c) => c.firstByteAt === undefined)) return {kind: 'idle'}
    const at = Math.max(...running.map((c) => c.firstByteAt!)) + this.timing.delayMs
    if (now < at) return {kind: 'wait', at}
    // All of them have had their first byte (above).
    if (firstByteTime(running)! < this.timing.minWindowMs) {
      this.phase = 'baseline-first'
      this.window = {t: now, bytes: received}
      return {kind: 'wait', at: now + BASELINE_FIRST_MS}
    }
    const to = this.controller.stepFirst(now, room)
    if (to === from) {
      this.phase = 'done'
      return {kind: 'idle'}
    }
    this.phase = 'measuring'
    this.window = {t: now, bytes: received}
    return {kind: 'stepped', from, to}
  }

  private baselineFirst(now: number, received: number, room: boolean): FirstStepUpdate {
    const {t, bytes} = this.window!
    if (now - t < BASELINE_FIRST_MS) return {kind: 'wait', at: t + BASELINE_FIRST_MS}
    this.phase = 'done'
    const from = this.controller.target
    if (this.controller.stepped) return {kind: 'idle'}
    const to = this.controller.stepFirst(now, room)
    if (to === from) return {kind: 'idle'}
    const baseline = ((received - bytes) * 1000) / (now - t)
    this.controller.baseline(baseline)
    return {kind: 'stepped', from, to, baseline}
  }

  private measuring(now: number, connections: Iterable<Started>, received: number): FirstStepUpdate {
    const {t, bytes} = this.window!
    const windowMs = now - t
    let added = false
    for (const c of connections) added ||= c.startedAt >= t && c.firstByteAt !== undefined
    if (!added && windowMs < this.timing.maxWindowMs) return {kind: 'wait', at: t + this.timing.maxWindowMs}
    this.phase = 'done'
    const baseline = windowMs >= this.timing.minWindowMs ? ((received - bytes) * 1000) / windowMs : undefined
    this.controller.baseline(baseline)
    return {kind: 'measured', baseline, windowMs}
  }
}

/**
 * Whether a change of the connection count has taken effect, so that throughput measured now
 * can judge it: most of the target count is receiving, and has been for a whole measuring
 * window. Counting from when the change was ordered instead, a server slow to answer (a first
 * byte after 300 ms or more, common behind signed CDN links) showed a window in which the added
 * connections were still silent: a step that helps looked like one that bought nothing, and
 * was undone. Pure: the engine tells it what runs.
 */
const RECEIVING_SHARE = 0.9
/** Connections that never answer are the stall timeout's business: judge anyway after this. */
const GIVE_UP_MS = 10_000

export class StepInEffect {
  private change?: number
  private effectAt?: number

  /**
   * @param changedAt when the count last changed
   * @param receiving how many of the running connections have had their first byte
   * @param windowMs the window the judging throughput is measured over
   * @param running how many connections run: after a cut, those beyond the target are still
   *   ending their requests, and the cut is in effect only once they have
   */
  judgeable(now: number, changedAt: number, target: number, receiving: number, windowMs: number, running = receiving): boolean {
    if (changedAt !== this.change) {
      this.change = changedAt
      this.effectAt = undefined
    }
    if (this.effectAt === undefined && receiving >= Math.ceil(RECEIVING_SHARE * target) && running <= target) this.effectAt = now
    if (now - changedAt >= GIVE_UP_MS) return true
    return this.effectAt !== undefined && now - this.effectAt >= windowMs
  }
}

/**
 * Tells a server's limit on connections per client from bad luck. Such a server resets or
 * closes the connections beyond its limit before they get a byte, while it serves the others;
 * two of those failures close together are taken for a limit.
 */
export class RefusalBursts {
  private recent: number[] = []

  constructor(private readonly windowMs = 2_000) {}

  /** A connection failed before its first byte, for a network reason (no HTTP status). */
  note(now: number): void {
    this.recent.push(now)
  }

  /** When the latest burst of refusals ended, if one came lately; each burst is told once. */
  burst(now: number): number | undefined {
    this.recent = this.recent.filter((at) => now - at < this.windowMs)
    if (this.recent.length < 2) return undefined
    const last = this.recent[this.recent.length - 1]
    this.recent = []
    return last
  }
}

/**
 * Whether this machine, not the path, is what limits the pull: then more connections only add
 * work, and a gain measured meanwhile is noise. Two signs: this process's event loop is nearly
 * always busy, or the machine's CPUs have almost no idle time left while this process uses a
 * good share of them (on a fat pipe, mtune, the kernel's network and disk work and a server
 * next door take every core; 40 connections there cost a fifth more CPU than 16 and bought
 * nothing). A busy machine with mtune barely running is someone else's load: not a reason.
 * Sampled by the monitor tick.
 */
export class CpuHeadroom {
  private readonly loopBusy = new Meter(10_000)
  private readonly ownCpu = new Meter(10_000)
  private readonly idle = new Meter(10_000)
  private readonly all = new Meter(10_000)
  private active: number
  private own: number
  /**
   * From the first tick on, not from the start: os.cpus() reads /proc/stat and /proc/cpuinfo
   * (a millisecond or more on a server of many cores), and a dataset's small files, a
   * transfer each, are over before their first tick.
   */
  private machine?: {idle: number; all: number}

  constructor(private readonly read: CpuReadings = cpuReadings) {
    this.active = read.loopActive()
    this.own = read.ownCpu()
  }

  sample(now: number): void {
    const active = this.read.loopActive()
    this.loopBusy.add(active - this.active)
    this.active = active
    const own = this.read.ownCpu()
    this.ownCpu.add(own - this.own)
    this.own = own
    const machine = this.read.machine()
    if (this.machine) {
      this.idle.add(Math.max(0, machine.idle - this.machine.idle))
      this.all.add(Math.max(0, machine.all - this.machine.all))
    }
    this.machine = machine
    for (const m of [this.loopBusy, this.ownCpu, this.idle, this.all]) m.sample(now)
  }

  /** The event loop's utilization over about the last `windowMs` (0 to 1); 0 before two samples. */
  loop(now: number, windowMs: number): number {
    return this.loopBusy.rate(now, windowMs) / 1000
  }

  /** The loop is saturated, or the CPUs are, with this process using at least half a core. */
  exhausted(now: number, windowMs: number): boolean {
    return this.limit(now, windowMs) !== 'none'
  }

  /** Which of the two, the loop first (it is what shedding connections relieves). */
  limit(now: number, windowMs: number): CpuLimit {
    if (this.loop(now, windowMs) >= LOOP_SATURATED) return 'loop'
    const all = this.all.rate(now, windowMs)
    if (all <= 0) return 'none'
    const idleShare = this.idle.rate(now, windowMs) / all
    const cores = this.ownCpu.rate(now, windowMs) / 1000
    return idleShare < MACHINE_IDLE_LEFT && cores >= 0.5 ? 'machine' : 'none'
  }
}

/**
 * Event-loop utilization past which mtune's own loop is the limit: busy 80% of the time, each
 * added connection's reads already queue behind the others'.
 */
const LOOP_SATURATED = 0.8
/**
 * Share of the machine's CPU time left idle below which the CPUs are the limit: on logical
 * CPUs (SMT), the last fifth of idle time is mostly a sibling's, not a core's.
 */
const MACHINE_IDLE_LEFT = 0.2

/** Cumulative counters, in ms; injectable for tests. */
export interface CpuReadings {
  /** The event loop's busy time. */
  loopActive(): number
  /** This process's CPU time, every thread. */
  ownCpu(): number
  /** The machine's idle and total CPU time over all cores. */
  machine(): {idle: number; all: number}
}

const cpuReadings: CpuReadings = {
  loopActive: () => performance.eventLoopUtilization().active,
  ownCpu: () => {
    const u = process.cpuUsage()
    return (u.user + u.system) / 1000
  },
  machine: () => {
    let idle = 0
    let all = 0
    for (const {times} of cpus()) {
      idle += times.idle
      all += times.user + times.nice + times.sys + times.idle + times.irq
    }
    return {idle, all}
  },
}

/** What the ramp needs to know of a running connection. */
export interface RampConnection<S> extends Started {
  followsServed: boolean
  source: S
}

export interface RampView<S> {
  connections: Iterable<RampConnection<S>>
  /** Bytes received so far. */
  received: number
  /** Bytes per second over the judging window. */
  throughput: number
  /** Whether more connections would have anything to fetch. */
  room: boolean
}

export interface RampEvents<S> {
  /** The target rose outside the tick: start connections now. */
  stepped(): void
  /** A server refuses connections beyond `here`: say so. */
  limited(source: S, here: number, target: number): void
  debug(message: string): void
}

/** Throughput over this window judges a change of the connection count. */
export const JUDGE_WINDOW_MS = 400

/** The engine's view of the ramp: fed what runs each tick and on first bytes, it sets the target. */
export class Ramp<S extends {alive: boolean}> {
  private readonly firstStep: FirstStepUp
  private readonly inEffect = new StepInEffect()
  private readonly cpu = new CpuHeadroom()
  private readonly refusals = new Map<S, RefusalBursts>()
  private wake?: {at: number; timer: NodeJS.Timeout}
  private closed = false

  constructor(
    readonly controller: ConnectionController,
    private readonly view: () => RampView<S>,
    private readonly events: RampEvents<S>,
  ) {
    this.firstStep = new FirstStepUp(controller)
  }

  get target(): number {
    return this.controller.target
  }

  /** The monitor tick: hold at a server's limit, judge the last change, or grow. */
  tick(now: number): void {
    this.cpu.sample(now)
    if (this.closed) return
    this.firstByte(now)
    const view = this.view()
    const before = this.controller.target
    this.holdAtServerLimit(now, view)
    const running = [...view.connections].filter((c) => !c.stopReason)
    const receiving = running.filter((c) => c.firstByteAt !== undefined).length
    if (this.controller.target === before && this.inEffect.judgeable(now, this.controller.lastChange, before, receiving, JUDGE_WINDOW_MS, running.length)) {
      // A step already taken is still judged (and undone if it bought nothing); only growth waits.
      this.controller.sample(now, view.throughput, view.room, this.cpu.limit(now, JUDGE_WINDOW_MS))
    }
    if (this.controller.target !== before) this.events.debug(`connections ${before} -> ${this.controller.target} at ${Math.round(view.throughput / 1048576)} MiB/s`)
  }

  /** A first byte came (or a timer set for the first step fired): the first step, as soon as it can be taken and judged. */
  firstByte(now: number): void {
    if (this.closed) return
    const view = this.view()
    // Not even the first step on a machine already out of CPU: it would only add work.
    const update = this.firstStep.update(now, view.connections, view.received, view.room && !this.cpu.exhausted(now, JUDGE_WINDOW_MS))
    if (update.kind === 'stepped') {
      const how = update.baseline === undefined ? 'measuring the baseline while they connect' : `over a baseline of ${Math.round(update.baseline / 1048576)} MiB/s`
      this.events.debug(`connections ${update.from} -> ${update.to}, ${how}`)
      this.events.stepped()
    } else if (update.kind === 'measured') {
      const rate = update.baseline === undefined ? 'none (they answered too soon)' : `${Math.round(update.baseline / 1048576)} MiB/s`
      this.events.debug(`first step's baseline over ${Math.round(update.windowMs)} ms: ${rate}`)
    } else if (update.kind === 'wait' && !(this.wake && this.wake.at <= update.at)) {
      if (this.wake) clearTimeout(this.wake.timer)
      // A timer, not the next tick: each tick of delay is a tick at the lower connection count.
      const timer = setTimeout(() => {
        this.wake = undefined
        this.firstByte(performance.now())
      }, Math.max(1, Math.ceil(update.at - now)))
      this.wake = {at: update.at, timer}
    }
  }

  /** A connection to `source` failed before its first byte, for a network reason: perhaps a limit per client. */
  refused(source: S, now: number): void {
    const bursts = this.refusals.get(source) ?? new RefusalBursts()
    this.refusals.set(source, bursts)
    bursts.note(now)
  }

  /** 429/503: fewer connections; returns the new target. */
  throttled(now: number, running: number): number {
    return this.controller.throttled(now, running)
  }

  close(): void {
    this.closed = true
    if (this.wake) clearTimeout(this.wake.timer)
  }

  /**
   * Connections refused before their first byte, in a burst, while the same server let others
   * through: it limits connections per client. Hold at those let through (streaming, following
   * a request served to its end, or started before the refusals and still waiting for their
   * first byte). A server that lets none through is down, not limiting, and is left to the
   * retries.
   */
  private holdAtServerLimit(now: number, view: RampView<S>): void {
    for (const [source, bursts] of this.refusals) {
      const lastRefusal = bursts.burst(now)
      if (lastRefusal === undefined || !source.alive) continue
      const served = [...view.connections].filter(
        (c) => !c.stopReason && (c.firstByteAt !== undefined || c.followsServed || c.startedAt <= lastRefusal),
      )
      const here = served.filter((c) => c.source === source).length
      if (here === 0) continue
      const before = this.controller.target
      const target = this.controller.refused(now, served.length)
      if (target < before) this.events.limited(source, here, target)
    }
  }
}
