/**
 * How many connections to run. Grows while total throughput grows (a server that caps each
 * connection is served best by many), stops at the plateau, halves on 429/503 (and holds at
 * what works when the server refuses more) and waits before growing again; sheds toward
 * SHED_FLOOR while mtune's own event loop is the limit. Pure: the engine feeds it samples and
 * asks for the target.
 */
export interface ControllerOptions {
  initial: number
  max: number
  /** Time for new connections to reach speed before their effect is judged. */
  settleMs?: number
  /** How long to hold off growing after the server said "too many". */
  throttleHoldMs?: number
}

/**
 * What limits the pull besides the path (ramp.ts CpuHeadroom): nothing, the machine's CPUs
 * (with this process using a good share of them), or this process's own event loop.
 */
export type CpuLimit = 'none' | 'machine' | 'loop'

/**
 * Shedding: with the event loop as the limit, fewer connections move as much for less work.
 * On a fat pipe (2 GiB from nginx on loopback, 2 cores, interleaved runs after a pause) 8
 * connections from the start took 4.2 s against 16's 4.9 (medians of 10) and 3.54 against
 * 3.83 (of 5): less is held in flight, and the contiguous prefix the hash follows lags less
 * (hashed 0.2-0.3 s after the last byte against 0.4-0.6). Shedding from 16 once the loop is
 * seen saturated (after about a second) gains part of that on 2 GiB: 3.40 against 3.48 and
 * 3.65 against 3.83 s over HTTP, 4.87 against 5.12 over HTTPS (medians of 5-6); a longer pull
 * gains more. Not below SHED_FLOOR (stragglers and the pieces' end game want a few
 * connections), and kept only if throughput held: halving connections that a server caps one
 * by one halves throughput, which SHED_KEEP tells from the noise of a saturated machine (10-30%
 * between windows, and a downward drift as the hash takes its share of the cores).
 */
const SHED_FLOOR = 8
const SHED_KEEP = 0.6

export class ConnectionController {
  target: number
  private readonly max: number
  private readonly settleMs: number
  private readonly throttleHoldMs: number
  private changedAt = 0
  private before?: number
  private previous?: number
  private holdUntil = 0
  private plateauAt?: number
  private steps = 0
  private awaitingBaseline = false
  private unjudged = false
  /** A shed being judged: the count before it and the throughput it must keep. */
  private shedding?: {from: number; before: number}
  /** A shed lost throughput: the path needs the connections, so never again. */
  private shedRefused = false

  constructor(options: ControllerOptions, now: number) {
    this.max = Math.max(1, options.max)
    this.target = Math.min(this.max, Math.max(1, options.initial))
    this.settleMs = options.settleMs ?? 400
    this.throttleHoldMs = options.throttleHoldMs ?? 30_000
    this.changedAt = now
  }

  /**
   * @param throughput bytes/s over the last settle window
   * @param room whether more connections would have anything to fetch
   * @param cpu this machine, not the path, is the limit (ramp.ts CpuHeadroom): a step is then
   *   undone whatever it seemed to gain, since more connections can only add work; with the
   *   event loop the limit, connections are shed (SHED_FLOOR)
   */
  sample(now: number, throughput: number, room: boolean, cpu: CpuLimit = 'none'): number {
    if (now - this.changedAt < this.settleMs) return this.target
    return this.judge(now, throughput, room && cpu === 'none', cpu)
  }

  /**
   * The first step needs nothing to compare with, only a baseline to judge it by later, so it
   * is taken early, without the settle wait: the engine measures the baseline on the first
   * connections while the added ones still wait for their first byte (see ramp.ts FirstStepUp), and
   * reports it with `baseline`.
   */
  stepFirst(now: number, room: boolean): number {
    if (this.stepped || now < this.holdUntil || !room || this.target >= this.max) return this.target
    this.steps++
    this.previous = this.target
    this.before = undefined
    this.awaitingBaseline = true
    this.target = Math.min(this.max, this.target * 2)
    this.changedAt = now
    return this.target
  }

  /**
   * The first step's baseline, in bytes/s; undefined when it could not be measured fairly
   * (the added connections answered too soon). Then the step is not judged, since judging it
   * against a guess could undo a step that helped: growth goes on from there, each later step
   * judged as usual.
   */
  baseline(rate: number | undefined): void {
    if (!this.awaitingBaseline) return
    this.awaitingBaseline = false
    if (rate !== undefined && rate > 0) this.before = rate
    else this.unjudged = true
  }

  /** When the count last changed (or the controller started). */
  get lastChange(): number {
    return this.changedAt
  }

  /** Whether any step has been taken yet. */
  get stepped(): boolean {
    return this.steps > 0
  }

  private judge(now: number, throughput: number, room: boolean, cpu: CpuLimit): number {
    if (now < this.holdUntil || throughput <= 0) return this.target
    if (this.shedding) return this.judgeShed(now, throughput)
    const stepPending = this.previous !== undefined && this.previous < this.target && (this.before !== undefined || this.awaitingBaseline || this.unjudged)
    // A step pending is undone first: its early burst would overstate what the count before it
    // does, so the shed waits for that count to run a whole window of its own.
    if (cpu !== 'none' && stepPending) return this.undoStep(now)
    if (cpu === 'loop' && this.mayShed()) return this.shed(now, throughput)
    if (this.awaitingBaseline || this.unjudged) {
      // The first step cannot be judged: judge the next one against where it led.
      this.awaitingBaseline = false
      this.unjudged = false
      this.before = undefined
      if (!room || this.target >= this.max) return this.target
      this.before = throughput
      this.steps++
      this.previous = this.target
      this.target = Math.min(this.max, this.target + Math.max(2, Math.ceil(this.target / 4)))
      this.changedAt = now
      return this.target
    }
    if (this.plateauAt !== undefined && now - this.plateauAt < 20_000) return this.target
    if (this.before !== undefined && throughput < this.before * 1.05) {
      // The last step bought nothing: the path, not the connection count, is the limit. Go
      // back to where it was; the extra connections only cost the server.
      return this.undoStep(now)
    }
    if (!room || this.target >= this.max) return this.target
    // The first step doubles; later ones add a quarter. A later doubling was judged by a gain
    // that a path still warming up (TCP slow start, a cold server) inflates: it overshot, to
    // 64 connections that bought nothing over 32 but memory and the server's patience, and
    // held them until a sample happened to fall below.
    const step = this.steps === 0 ? this.target : Math.max(2, Math.ceil(this.target / 4))
    this.before = throughput
    this.steps++
    this.plateauAt = undefined
    this.previous = this.target
    this.target = Math.min(this.max, this.target + step)
    this.changedAt = now
    return this.target
  }

  private mayShed(): boolean {
    return !this.shedRefused && this.target > SHED_FLOOR
  }

  /** Half the connections, to be judged against `throughput` once they alone run. */
  private shed(now: number, throughput: number): number {
    this.shedding = {from: this.target, before: throughput}
    this.before = undefined
    this.previous = undefined
    this.target = Math.max(SHED_FLOOR, Math.ceil(this.target / 2))
    this.changedAt = now
    return this.target
  }

  private judgeShed(now: number, throughput: number): number {
    const {from, before} = this.shedding!
    this.shedding = undefined
    this.plateauAt = now
    if (throughput >= before * SHED_KEEP) return this.target
    this.shedRefused = true
    this.target = from
    this.changedAt = now
    return this.target
  }

  private undoStep(now: number): number {
    this.plateauAt = now
    this.before = undefined
    this.awaitingBaseline = false
    this.unjudged = false
    if (this.previous !== undefined) this.target = this.previous
    this.changedAt = now
    return this.target
  }

  /**
   * The server refuses (resets, closes) connections beyond those it is serving: a limit per
   * client. Hold at the ones that work, and do not grow again for a while.
   */
  refused(now: number, working: number): number {
    const cap = Math.max(1, working)
    if (this.target <= cap) return this.target
    this.target = cap
    this.holdUntil = now + this.throttleHoldMs
    this.forgetJudgements()
    this.before = undefined
    this.previous = undefined
    this.changedAt = now
    return this.target
  }

  /** 429/503: halve, and do not grow again for a while. */
  throttled(now: number, running: number): number {
    if (now < this.holdUntil && this.target <= Math.max(1, Math.floor(running / 2))) return this.target
    this.target = Math.max(1, Math.floor(Math.min(this.target, running) / 2))
    this.holdUntil = now + this.throttleHoldMs
    this.forgetJudgements()
    this.before = undefined
    this.previous = undefined
    this.changedAt = now
    return this.target
  }

  /** The server set the count: a baseline measured before, or a shed's, says nothing about it. */
  private forgetJudgements(): void {
    this.awaitingBaseline = false
    this.unjudged = false
    this.shedding = undefined
  }
}
