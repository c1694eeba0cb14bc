/**
 * Connections shared by every file of a multi-file pull: each file's controller still decides
 * how many it would like, but together they never exceed the budget.
 */
export class ConnectionBudget {
  private used = 0

  constructor(readonly max: number) {}

  /** `force` for the one connection a file needs to make any progress at all. */
  tryAcquire(force = false): boolean {
    if (!force && this.used >= this.max) return false
    this.used++
    return true
  }

  release(): void {
    this.used = Math.max(0, this.used - 1)
  }

  get inUse(): number {
    return this.used
  }
}
