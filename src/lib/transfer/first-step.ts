import type {ConnectionController} from './connection-controller.js'

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

export class FirstStep {
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
    if (firstByteTime(running) < this.timing.minWindowMs) {
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

/** How long the connections took to their first byte: the upper median, so one quick probe does not decide. */
function firstByteTime(connections: Started[]): number {
  const times = connections.map((c) => c.firstByteAt! - c.startedAt).sort((a, b) => a - b)
  return times[Math.floor(times.length / 2)]
}
