/**
 * Tells a server's limit on connections per client from bad luck. Such a server resets or
 * closes the connections beyond its limit before they get a byte, while it serves the others;
 * two of those failures close together are taken for a limit.
 */
export class RefusalWatch {
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
