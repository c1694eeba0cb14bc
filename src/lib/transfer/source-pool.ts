import {ifRangeValidator} from '../net/http-range.js'
import {redact, signedUrlExpiry} from '../net/request.js'
import type {PullResult} from './pull-types.js'

/**
 * One URL that serves the file: the one given, or a --mirror. Each group of fields has one
 * writer: its standing (alive, rate, cooldown, counts) the SourcePool, its signed link (target,
 * headers, renewal) LinkRenewal; everyone else reads.
 */
export interface Source extends SignedLink {
  readonly url: string
  readonly etag?: string
  readonly lastModified?: string
  readonly primary: boolean
  readonly alive: boolean
  /** Per-connection throughput, smoothed; undefined until measured. */
  readonly rate?: number
  /** Not to be used before this (performance.now() ms). */
  readonly cooldownUntil: number
  /** Bytes of the file this source delivered. */
  readonly bytes: number
  /** Failures in a row with no byte from it in between. */
  readonly failures: number
  readonly droppedWhy?: string
}

/** Where a source's requests go now, which LinkRenewal alone changes. */
export interface SignedLink {
  /** Where requests go: the URL after redirects. */
  readonly target: string
  /** What requests to `target` carry: credentials only if it is the origin they were given for. */
  readonly headers: Record<string, string>
  /** When `target` was last resolved (performance.now() ms). */
  readonly resolvedAt: number
  /** When to renew `target`, a signed URL, before it expires (epoch ms). */
  readonly renewAt?: number
  /** A re-resolution under way, shared by the connections that need it. */
  readonly resolving?: Promise<boolean>
}

/**
 * A link the user gave with its signature in it (a presigned S3 or CDN URL, not reached by a
 * redirect): LinkRenewal has no URL to ask for a fresh one, so only the user can renew it.
 */
export const signedByUser = (s: Pick<Source, 'url' | 'target'>): boolean => s.target === s.url && new URL(s.url).search !== ''

/** A source as its writers see it (the pool writes only its standing, LinkRenewal only its link). */
export type WritableSource = {-readonly [K in keyof Source]: Source[K]}
const own = (source: Source) => source as WritableSource

/** What the pool needs to know of a connection in flight: which source it uses. */
export interface Using {
  readonly source: Source
}

export function newSource(
  url: string,
  target: string,
  validators: {etag?: string; lastModified?: string},
  primary: boolean,
  now: number,
  headers: Record<string, string> = {},
): Source {
  const renewAt = renewalTime(signedUrlExpiry(target))
  return {url, target, ...validators, primary, alive: true, cooldownUntil: 0, resolvedAt: now, renewAt, bytes: 0, failures: 0, headers}
}

export const validatorOf = (source: Source) => ifRangeValidator(source)

/**
 * Chooses the source for each new request: unmeasured sources first (so each gets tried), then
 * the one whose connections run fastest. As a source fills up its per-connection rate falls and
 * the next requests go elsewhere, which spreads connections by what each mirror can give.
 */
export class SourcePool {
  readonly sources: Source[] = []
  /** Mirrors that did not serve the same file, never used. */
  private readonly turnedAway: PullResult['mirrors'] = []

  add(source: Source): void {
    this.sources.push(source)
  }

  /** The source for the next request; `running`: the connections in flight, each on its source. */
  pick(now: number, running: Iterable<Using>): Source | undefined {
    const active = new Map<Source, number>()
    for (const c of running) active.set(c.source, (active.get(c.source) ?? 0) + 1)
    const load = (s: Source) => active.get(s) ?? 0
    let best: Source | undefined
    for (const s of this.sources) {
      if (!s.alive || s.cooldownUntil > now) continue
      if (!best || better(s, best, load)) best = s
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
    own(source).rate = source.rate === undefined ? perConnection : source.rate * 0.7 + perConnection * 0.3
  }

  /** Bytes of the file came from it: its run of failures is over. */
  served(source: Source, bytes: number): void {
    own(source).bytes += bytes
    own(source).failures = 0
  }

  /** One more failure in a row (a transient one: the network, not the file). */
  failed(source: Source): void {
    own(source).failures++
  }

  /** Not to be used before `until` (performance.now() ms). */
  rest(source: Source, until: number): void {
    own(source).cooldownUntil = Math.max(source.cooldownUntil, until)
  }

  drop(source: Source, why: string): void {
    own(source).alive = false
    own(source).droppedWhy = why
  }

  /** A mirror was not taken in (rejected: why). */
  rejected(mirror: string, why: string): void {
    this.turnedAway.push({url: redact(mirror), used: false, bytes: 0, dropped: why})
  }

  /** What each mirror gave: those turned away, then those taken in. */
  mirrorReport(): PullResult['mirrors'] {
    const taken = this.sources.filter((s) => !s.primary).map((s) => ({url: redact(s.url), used: s.bytes > 0, bytes: s.bytes, dropped: s.droppedWhy}))
    return [...this.turnedAway, ...taken]
  }

  get alive(): Source[] {
    return this.sources.filter((s) => s.alive)
  }
}

function better(a: Source, b: Source, load: (s: Source) => number): boolean {
  const ra = a.rate ?? Number.POSITIVE_INFINITY
  const rb = b.rate ?? Number.POSITIVE_INFINITY
  // An unmeasured source is tried by one connection at a time, not swamped.
  if (ra === Number.POSITIVE_INFINITY && load(a) > 0) return rb === Number.POSITIVE_INFINITY ? load(a) < load(b) : false
  if (ra !== rb) return ra > rb
  return load(a) < load(b)
}

/** Renew a signed URL a fifth of its lifetime, at most 10 s, before it expires. */
export function renewalTime(expiresAt: number | undefined, now = Date.now()): number | undefined {
  if (expiresAt === undefined) return undefined
  return expiresAt - Math.min(10_000, Math.max(0, (expiresAt - now) / 5))
}
