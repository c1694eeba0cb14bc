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

export class StepEffect {
  private change?: number
  private effectAt?: number

  /**
   * @param changedAt when the count last changed
   * @param receiving how many of the running connections have had their first byte
   * @param windowMs the window the judging throughput is measured over
   */
  ready(now: number, changedAt: number, target: number, receiving: number, windowMs: number): boolean {
    if (changedAt !== this.change) {
      this.change = changedAt
      this.effectAt = undefined
    }
    if (this.effectAt === undefined && receiving >= Math.ceil(RECEIVING_SHARE * target)) this.effectAt = now
    if (now - changedAt >= GIVE_UP_MS) return true
    return this.effectAt !== undefined && now - this.effectAt >= windowMs
  }
}
