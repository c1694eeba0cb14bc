import {readFileSync} from 'node:fs'
import {dirname} from 'node:path'
import {benchResultsPath, tuneFlags} from '../bench/link.js'
import {runBench, type BenchReport} from '../bench/run.js'
import {decide, gatherFacts} from '../doctor/run.js'
import type {Finding} from '../doctor/finding.js'
import {ExitCode, MtuneError} from '../errors.js'
import {shownUrl} from '../net/credentials.js'
import {planTotals, type Plan} from '../sources/plan.js'
import type {SystemReader} from '../system/reader.js'
import {recommend} from '../tune/recommend.js'
import {gatherTuneFacts} from '../tune/run.js'
import {formatBitRate, formatBytes, formatRate} from '../units.js'
import type {Candidate} from './candidates.js'

export interface AutoDecision {
  source: string
  /** `token`: the user's hub token was sent to this candidate (never to public mirrors mtune added). */
  candidates: Array<{label: string; url?: string; ok: boolean; reason?: string; throughputBps?: number; ttfbMs?: number; token: boolean}>
  chosen: {label: string; url: string}
  /** The other working candidates, in order: failover targets during the pull. */
  fallbacks: Array<{label: string; url: string}>
  connections: number
  chunkSize: number
  expectedThroughputBps?: number
  expectedSeconds?: number
  totalBytes?: number
  missingBytes?: number
  path: string
  reasons: {mirror: string; connections: string}
  preflight: Finding[]
  tuning: {changes: Array<{id: string; current?: string; recommended: string}>; command?: string}
  bench: {reused: boolean; measuredAt: string; usedMs: number}
}

const RECENT_MS = 60 * 60 * 1000

/** A saved bench that measured these same candidates within the hour, if there is one. */
export function recentBench(candidates: Candidate[], env: NodeJS.ProcessEnv, now = Date.now()): BenchReport | undefined {
  try {
    const saved = JSON.parse(readFileSync(benchResultsPath(env), 'utf8')) as BenchReport
    if (!saved.recommendation || now - Date.parse(saved.measuredAt) > RECENT_MS) return undefined
    const measured = new Set(saved.mirrors.map((m) => m.url))
    const wanted = candidates.filter((c) => c.ok && c.url).map((c) => shownUrl(c.url!))
    return wanted.length > 0 && wanted.every((u) => measured.has(u)) ? saved : undefined
  } catch {
    return undefined
  }
}

/** Failing preflight checks stop the pull before any download, with their fixes. */
export function preflightFailure(findings: Finding[]): MtuneError | undefined {
  const failed = findings.filter((f) => f.status === 'fail')
  if (failed.length === 0) return undefined
  const what = failed.map((f) => `${f.title}: ${f.summary}${f.fix ? ` (fix: ${f.fix})` : ''}`).join('; ')
  const disk = failed.some((f) => f.group === 'disk')
  return new MtuneError('preflight', `preflight failed, nothing was downloaded: ${what}`, disk ? ExitCode.localDisk : ExitCode.failure)
}

export async function decideAuto(
  source: string,
  candidates: Candidate[],
  options: {path: string; budgetMs: number; env?: NodeJS.ProcessEnv; signal?: AbortSignal; progress?(m: string): void},
  r: SystemReader,
): Promise<AutoDecision> {
  const env = options.env ?? process.env
  const working = candidates.filter((c) => c.ok && c.url)
  if (working.length === 0) {
    throw new MtuneError('no-candidate', `no mirror of ${source} answered: ${candidates.map((c) => `${c.label}: ${c.reason}`).join('; ')}`, ExitCode.remote)
  }
  const plan: Plan | undefined = working.find((c) => c.plan)?.plan
  const totals = plan ? planTotals(plan) : undefined

  let bench = recentBench(candidates, env)
  const reused = Boolean(bench)
  if (!bench) {
    options.progress?.(`measuring ${working.length} candidate${working.length > 1 ? 's' : ''} for about ${Math.round(options.budgetMs / 1000)} s`)
    bench = await runBench(
      {mirrors: working.map((c) => ({url: c.url!, headers: c.headers})), connections: [2, 4, 8, 16, 32], chunkSizes: [16 * 1024 * 1024], budgetMs: options.budgetMs, maxBytes: 1024 ** 3, signal: options.signal, env},
      r,
    )
  } else options.progress?.(`using the mtune bench results of ${bench.measuredAt} for these mirrors`)

  const size = totals?.bytes ?? bench.mirrors.find((m) => m.ok && m.size)?.size
  const missing = totals ? totals.bytes - totals.presentBytes : size
  const path = plan?.root ?? options.path
  const preflight = decide(await gatherFacts(r, {path, size, missing, groups: ['disk', 'memory', 'gpu']}), ['disk', 'memory', 'gpu'], missing)
  const failure = preflightFailure(preflight)
  if (failure) throw failure

  // Bench names each mirror as shown (without credentials); the candidate keeps the URL to use.
  const shown = (c: Candidate) => (c.url ? shownUrl(c.url) : undefined)
  const byUrl = new Map(bench.mirrors.map((m) => [m.url, m]))
  const measured = (c: Candidate) => byUrl.get(shown(c) ?? '')
  const rec = bench.recommendation
  const ranked = working
    .map((c) => ({c, m: measured(c)}))
    .filter((x) => x.m?.ok)
    .sort((a, b) => (shown(a.c) === rec?.mirror ? -1 : shown(b.c) === rec?.mirror ? 1 : (b.m!.throughputBps?.median ?? 0) - (a.m!.throughputBps?.median ?? 0)))
  // A server that ignores Range is still a download, as a plain pull makes it: one stream, when
  // no candidate serves ranges. Nothing to measure or fail over to (mirrors need ranges).
  const whole = ranked.length === 0 ? working.find((c) => measured(c)?.noRanges) : undefined
  if (ranked.length === 0 && !whole) {
    throw new MtuneError('no-candidate', `no mirror of ${source} served a ranged request: ${bench.mirrors.map((m) => `${m.url}: ${m.reason ?? 'ok'}`).join('; ')}`, ExitCode.remote)
  }
  if (whole) ranked.push({c: whole, m: measured(whole)})
  const chosen = ranked[0]
  const gridded = rec && rec.mirror === shown(chosen.c) ? rec : undefined
  const connections = whole ? 1 : (gridded?.connections ?? 16)
  const chunkSize = gridded?.chunkSize ?? 4 * 1024 * 1024
  const expected = gridded?.throughputBps ?? chosen.m!.throughputBps?.median
  const others = ranked.slice(1)
  const failed = candidates.filter((c) => c !== whole && (!c.ok || !measured(c)?.ok))
  const mirrorWhy =
    (whole
      ? `the only candidate that answered, and it does not support ranges: one stream, and an interrupted pull starts over`
      : `${ranked.length > 1 ? `fastest of ${ranked.length} working candidates` : 'the only working candidate'}: ${formatRate(expected ?? 0)} with ${connections} connections`) +
    (others.length ? `; next ${others[0].c.label} at ${formatRate(others[0].m!.throughputBps?.median ?? 0)} on one stream` : '') +
    (failed.length ? `; not used: ${failed.map((c) => `${c.label} (${c.reason ?? measured(c)?.reason ?? 'failed'})`).join(', ')}` : '')

  const link = bench.link
  const tuneFacts = gatherTuneFacts(r, {path: dirname(path), bandwidthBps: link?.bandwidthBps, rttMs: link?.rttMs})
  const changes = recommend(tuneFacts).filter((k) => k.action === 'change')
  const bandwidthFlag = link ? tuneFlags(link) : ''
  return {
    source,
    candidates: candidates.map((c) => {
      const m = measured(c)
      return {label: c.label, url: shown(c), ok: c.ok && Boolean(m?.ok), reason: c.reason ?? m?.reason, throughputBps: m?.throughputBps?.median, ttfbMs: m?.ttfbMs?.median, token: c.token}
    }),
    chosen: {label: chosen.c.label, url: shown(chosen.c)!},
    fallbacks: others.map((o) => ({label: o.c.label, url: shown(o.c)!})),
    connections,
    chunkSize,
    expectedThroughputBps: expected,
    expectedSeconds: expected && missing !== undefined ? missing / expected : undefined,
    totalBytes: size,
    missingBytes: missing,
    path,
    reasons: {mirror: mirrorWhy, connections: whole ? 'the server sends the whole file to every request: one connection' : (gridded?.reason ?? 'no grid was measured on it: the default, adapted during the pull')},
    preflight,
    tuning: {
      changes: changes.map((k) => ({id: k.id, current: k.current, recommended: k.recommended})),
      command: changes.length ? `sudo mtune tune --apply${bandwidthFlag}` : undefined,
    },
    bench: {reused, measuredAt: bench.measuredAt, usedMs: reused ? 0 : bench.budget.usedMs},
  }
}

export function describeDecision(d: AutoDecision): string[] {
  const lines = [
    `Decision for ${d.source}:`,
    `  mirror       ${d.chosen.label}`,
    `               ${d.reasons.mirror}`,
    `  connections  ${d.connections}, chunks of ${formatBytes(d.chunkSize)}`,
    `               ${d.reasons.connections}`,
  ]
  if (d.missingBytes !== undefined) {
    lines.push(
      `  expected     ${formatBytes(d.missingBytes)} to fetch${d.expectedSeconds !== undefined ? `, about ${Math.ceil(d.expectedSeconds)} s at ${formatRate(d.expectedThroughputBps ?? 0)} (${formatBitRate(d.expectedThroughputBps ?? 0)})` : ''}`,
    )
  }
  const withToken = d.candidates.filter((c) => c.token)
  if (withToken.length > 0) {
    const without = d.candidates.filter((c) => !c.token)
    lines.push(`  token        sent to ${withToken.map((c) => c.label).join(', ')}${without.length ? `; not to ${without.map((c) => c.label).join(', ')} (not chosen by you: asked anonymously)` : ''}`)
  }
  if (d.fallbacks.length) lines.push(`  failover     ${d.fallbacks.map((f) => f.label).join(', ')} (used at the same time if faster, taken over if ${d.chosen.label} fails)`)
  const warned = d.preflight.filter((f) => f.status === 'warn')
  lines.push(`  preflight    ${warned.length ? `${warned.length} warning${warned.length > 1 ? 's' : ''}: ${warned.map((f) => `${f.title}: ${f.summary}`).join('; ')}` : 'disk, memory and GPU checks pass'}`)
  lines.push(
    d.tuning.command
      ? `  host tuning  mtune tune would change ${d.tuning.changes.length} setting${d.tuning.changes.length > 1 ? 's' : ''} (${d.tuning.changes.map((c) => c.id).slice(0, 4).join(', ')}${d.tuning.changes.length > 4 ? ', ...' : ''}): ${d.tuning.command}, or pull --auto --tune`
      : '  host tuning  nothing to change',
  )
  lines.push(`  measured     ${d.bench.reused ? `reused mtune bench results of ${d.bench.measuredAt}` : `in ${(d.bench.usedMs / 1000).toFixed(1)} s`}`)
  return lines
}
