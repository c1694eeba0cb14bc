import {ifRangeValidator} from '../net/http-range.js'

/** One URL that serves the file: the one given, or a --mirror. */
export interface Source {
  readonly url: string
  /** Where requests go: the URL after redirects. */
  target: string
  etag?: string
  lastModified?: string
  readonly primary: boolean
  alive: boolean
  active: number
  /** Per-connection throughput, smoothed; undefined until measured. */
  rate?: number
  cooldownUntil: number
  resolvedAt: number
  /** Bytes of the file this source delivered. */
  bytes: number
  /** Failures in a row with no byte from it in between. */
  failures: number
  droppedWhy?: string
  /** What requests to `target` carry: credentials only if it is the origin they were given for. */
  headers: Record<string, string>
  /** When to renew `target`, a signed URL, before it expires (epoch ms). */
  renewAt?: number
  /** A re-resolution under way, shared by the connections that need it. */
  resolving?: Promise<boolean>
}

export function newSource(
  url: string,
  target: string,
  validators: {etag?: string; lastModified?: string},
  primary: boolean,
  now: number,
  headers: Record<string, string> = {},
): Source {
  return {url, target, ...validators, primary, alive: true, active: 0, cooldownUntil: 0, resolvedAt: now, bytes: 0, failures: 0, headers}
}

export const validatorOf = (source: Source) => ifRangeValidator(source)

/**
 * Chooses the source for each new request: unmeasured sources first (so each gets tried), then
 * the one whose connections run fastest. As a source fills up its per-connection rate falls and
 * the next requests go elsewhere, which spreads connections by what each mirror can give.
 */
export class SourcePool {
  readonly sources: Source[] = []

  add(source: Source): void {
    this.sources.push(source)
  }

  pick(now: number): Source | undefined {
    let best: Source | undefined
    for (const s of this.sources) {
      if (!s.alive || s.cooldownUntil > now) continue
      if (!best || better(s, best)) best = s
    }
    return best
  }

  /** When the earliest source in cooldown becomes usable again; undefined if none is alive. */
  nextAvailableAt(): number | undefined {
    const alive = this.sources.filter((s) => s.alive)
    if (alive.length === 0) return undefined
    return Math.min(...alive.map((s) => s.cooldownUntil))
  }

  noteRate(source: Source, perConnection: number): void {
    source.rate = source.rate === undefined ? perConnection : source.rate * 0.7 + perConnection * 0.3
  }

  drop(source: Source, why: string): void {
    source.alive = false
    source.droppedWhy = why
  }

  get alive(): Source[] {
    return this.sources.filter((s) => s.alive)
  }
}

function better(a: Source, b: Source): boolean {
  const ra = a.rate ?? Number.POSITIVE_INFINITY
  const rb = b.rate ?? Number.POSITIVE_INFINITY
  // An unmeasured source is tried by one connection at a time, not swamped.
  if (ra === Number.POSITIVE_INFINITY && a.active > 0) return rb === Number.POSITIVE_INFINITY ? a.active < b.active : false
  if (ra !== rb) return ra > rb
  return a.active < b.active
}

/** Renew a signed URL a fifth of its lifetime, at most 10 s, before it expires. */
export function renewalTime(expiresAt: number | undefined, now = Date.now()): number | undefined {
  if (expiresAt === undefined) return undefined
  return expiresAt - Math.min(10_000, Math.max(0, (expiresAt - now) / 5))
}
