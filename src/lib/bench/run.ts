import {writeFileSync} from 'node:fs'
import {setTimeout as sleep} from 'node:timers/promises'
import {errorMessage} from '../errors.js'
import {shownUrl} from '../net/credentials.js'
import {readNetwork} from '../system/facts.js'
import type {SystemReader} from '../system/reader.js'
import {formatBytes, formatRate, sizeFlag} from '../units.js'
import {adviseGrid, answerCap, bottleneck, bufferVerdict, rankMirrors, summarizeMirror, type BufferVerdict, type GridAdvice, type MirrorSummary} from './decide.js'
import {measureDiskWrite} from './disk.js'
import {ByteBudget, runCell, type Cell} from './grid.js'
import {benchResultsPath} from './link.js'
import {writeOwnFile} from '../own-files.js'
import {probeOnce, type BenchTarget, type ProbeSample} from './probe.js'
import {shellLine} from '../ui/shell-words.js'

import {DEFAULT_CHUNKS, DEFAULT_CONNECTIONS, LINK_MIN_BYTES} from './defaults.js'

export {DEFAULT_CHUNKS, DEFAULT_CONNECTIONS}

export interface BenchOptions {
  /** URLs, or URLs with the credentials granted to their origin (a hub token for a gated repo). */
  mirrors: Array<string | BenchTarget>
  connections?: number[]
  chunkSizes?: number[]
  budgetMs?: number
  maxBytes?: number
  /** Run the grid on every working mirror, not just the best. */
  all?: boolean
  disk?: string
  probes?: number
  signal?: AbortSignal
  /** Save the results where doctor, tune and pull --auto find them (default true). */
  save?: boolean
  env?: NodeJS.ProcessEnv
  progress?(message: string): void
}

export interface BenchReport {
  version: 1
  measuredAt: string
  mirrors: MirrorSummary[]
  /** skipped: cells one round of whose requests (connections x chunk) needed more than their share of --max-bytes (`share`). */
  /** answeredAtMost: the mirror answers at most this many bytes of a range (a 206 for its start). */
  grids: Array<{url: string; cells: Cell[]; skipped: Array<{connections: number; chunkSize: number; share: number}>; answeredAtMost?: number; advice?: GridAdvice}>
  /** `command`: the pull to run, of what --mirror named (a model source stays one), with these settings. */
  recommendation?: {mirror: string; connections: number; chunkSize: number; throughputBps: number; reason: string; command: string}
  /** What doctor and tune size TCP buffers with. */
  link?: {bandwidthBps: number; rttMs: number}
  /** The file measured is too small to say what the link carries (LINK_MIN_BYTES): no link, not saved. */
  tooSmall?: {url: string; size: number; needed: number}
  buffers?: BufferVerdict & {rmemMax?: number; tcpRmemMax?: number}
  disk?: {path: string; throughputBps: number; bytes: number; bottleneck: 'network' | 'disk'}
  budget: {ms: number; usedMs: number; maxBytes: number; usedBytes: number}
  interrupted: boolean
  savedTo?: string
  /** The results could not be saved (a read-only home): where, and why. */
  notSaved?: {path: string; reason: string}
}

/**
 * Probe every mirror, run the connections x chunk-size grid on the best (or all), estimate the
 * path's BDP against the host's buffers, optionally time the disk; all inside the time and
 * byte budgets. A mirror that answers 429/503 is left alone, not hammered.
 */
export async function runBench(options: BenchOptions, r: SystemReader): Promise<BenchReport> {
  const started = performance.now()
  const budgetMs = options.budgetMs ?? 60_000
  const maxBytes = options.maxBytes ?? 4 * 1024 ** 3
  const budget = new ByteBudget(maxBytes)
  const deadline = started + budgetMs
  const left = () => deadline - performance.now()
  const stopped = () => Boolean(options.signal?.aborted) || left() <= 0
  const say = options.progress ?? (() => {})
  const probes = options.probes ?? 3
  const report: BenchReport = {
    version: 1,
    measuredAt: new Date().toISOString(),
    mirrors: [],
    grids: [],
    budget: {ms: budgetMs, usedMs: 0, maxBytes, usedBytes: 0},
    interrupted: false,
  }

  // Probes: a quarter of the budget at most, shared by every mirror and repeat.
  const probeMs = Math.max(200, Math.min(1_000, (budgetMs * 0.25) / (probes * options.mirrors.length)))
  // What is reported and saved names mirrors without credentials; requests use them as given.
  const finalUrls = new Map<string, string>()
  const targets = new Map<string, BenchTarget>()
  const summaries = await Promise.all(
    options.mirrors.map(async (mirror) => {
      const target = typeof mirror === 'string' ? {url: mirror} : mirror
      const url = target.url
      const shown = shownUrl(url)
      targets.set(shown, target)
      const samples: ProbeSample[] = []
      for (let i = 0; i < probes && !stopped(); i++) {
        // Reserved, not refunded: whatever the mirror sent for this range counts against --max-bytes.
        const readBytes = budget.take(Math.max(64 * 1024, Math.min(4 * 1024 * 1024, Math.floor(maxBytes / (4 * probes * options.mirrors.length)))))
        if (readBytes === 0) break
        const s = await probeOnce(target, {readBytes, readMs: probeMs, timeoutMs: Math.max(1_000, Math.min(10_000, left())), signal: options.signal})
        // A file smaller than the range asked for cannot have sent more than itself.
        if (s.size !== undefined) budget.give(readBytes - Math.min(readBytes, s.size))
        samples.push(s)
        if (s.status === 429 || s.status === 503) {
          const wait = s.retryAfterMs ?? 1_000
          // Wait as told if the budget allows; otherwise leave the mirror alone.
          if (wait > left() / 2) break
          say(`${shown}: rate limited, waiting ${(wait / 1000).toFixed(0)}s as it asked`)
          await sleep(wait, undefined, {signal: options.signal}).catch(() => {})
        } else if (s.error) break
      }
      finalUrls.set(shown, samples.find((s) => !s.error)?.finalUrl ?? url)
      return summarizeMirror(shown, samples.map((s) => ({...s, finalUrl: shownUrl(s.finalUrl)})))
    }),
  )
  report.mirrors = rankMirrors(summaries)
  for (const m of report.mirrors) say(m.ok ? `${m.url}: ${formatRate(m.throughputBps?.median ?? 0)} on one stream, first byte ${Math.round(m.ttfbMs?.median ?? 0)} ms` : `${m.url}: ${m.reason}`)

  const working = report.mirrors.filter((m) => m.ok && m.size)
  // A file under LINK_MIN_BYTES is one request however it is cut: a grid on it would time
  // round trips and recommend connections and chunks for a file that has no use for them.
  const gridded = (options.all ? working : working.slice(0, 1)).filter((m) => m.size! >= LINK_MIN_BYTES)
  const conns = options.connections ?? DEFAULT_CONNECTIONS
  const chunks = options.chunkSizes ?? DEFAULT_CHUNKS
  const diskReserve = options.disk ? Math.min(10_000, budgetMs * 0.15) : 0
  let cellsLeft = gridded.length * conns.length * chunks.length
  for (const m of gridded) {
    const grid = {
      url: m.url,
      cells: [] as Cell[],
      skipped: [] as Array<{connections: number; chunkSize: number; share: number}>,
      answeredAtMost: undefined as number | undefined,
      advice: undefined as GridAdvice | undefined,
    }
    report.grids.push(grid)
    for (const c of conns) {
      for (const k of chunks) {
        if (stopped() || budget.remaining === 0) break
        const timeMs = Math.max(100, (left() - diskReserve) / cellsLeft)
        // Each cell gets its share of the bytes left, as of now; what it does not spend goes to
        // the next. On a fat pipe the first cells would otherwise spend all of --max-bytes in
        // seconds, and the recommendation come from a grid of one or two cells.
        const share = Math.floor(budget.remaining / cellsLeft)
        cellsLeft--
        // A cell whose connections cannot each have one request within its share would measure
        // fewer connections than it is named for: left out, and said.
        if (c * Math.min(k, m.size!) > share) {
          grid.skipped.push({connections: c, chunkSize: k, share})
          continue
        }
        const target = targets.get(m.url)!
        const cellBudget = new ByteBudget(budget.take(share))
        const cell = await runCell(finalUrls.get(m.url)!, m.size!, c, k, {timeMs, budget: cellBudget, signal: options.signal, headers: target.headers, grantedOrigin: new URL(target.url).origin})
        budget.give(cellBudget.remaining)
        grid.cells.push(cell)
        say(`${c} x ${formatBytes(k)}: ${formatRate(cell.throughputBps)}${cell.throttled ? ' (rate limited: stopped)' : ''}`)
        if (cell.throttled) break
      }
    }
    grid.answeredAtMost = answerCap(grid.cells)
    grid.advice = adviseGrid(grid.cells, formatRate, formatBytes, grid.answeredAtMost)
  }

  const withAdvice = report.grids.filter((g) => g.advice).sort((a, b) => b.advice!.throughputBps - a.advice!.throughputBps)
  const bestGrid = withAdvice[0]
  if (bestGrid) {
    const a = bestGrid.advice!
    const source = targets.get(bestGrid.url)?.pull ?? [bestGrid.url]
    const command = shellLine(['mtune', 'pull', ...source, '-c', String(a.connections), '--chunk-size', sizeFlag(a.chunkSize)])
    report.recommendation = {mirror: bestGrid.url, connections: a.connections, chunkSize: a.chunkSize, throughputBps: a.throughputBps, reason: a.reason, command}
  }
  const lead = report.mirrors.find((m) => m.url === (bestGrid?.url ?? working[0]?.url))
  const bandwidth = bestGrid?.advice?.best.throughputBps ?? lead?.throughputBps?.median
  // The least of the handshakes: one taken longer was queued, or waited on this process's own
  // event loop while the other mirrors' probes ran beside it (13 ms seen on loopback).
  const rtt = lead?.connectMs?.min
  if (lead?.size !== undefined && lead.size < LINK_MIN_BYTES) report.tooSmall = {url: lead.url, size: lead.size, needed: LINK_MIN_BYTES}
  else if (bandwidth && rtt !== undefined) {
    // The TCP handshake takes one round trip.
    const rttMs = Math.max(0.01, Math.round(rtt * 100) / 100)
    report.link = {bandwidthBps: bandwidth, rttMs}
    const n = readNetwork(r)
    report.buffers = {...bufferVerdict(bandwidth, rttMs, n.rmemMax, n.tcpRmem?.[2]), rmemMax: n.rmemMax, tcpRmemMax: n.tcpRmem?.[2]}
  }

  if (options.disk && !options.signal?.aborted) {
    const bytes = Math.min(1024 ** 3, Math.max(64 * 1024 ** 2, maxBytes / 4))
    const d = await measureDiskWrite(options.disk, {bytes, timeMs: Math.max(500, Math.min(diskReserve, left())), signal: options.signal})
    report.disk = {path: options.disk, throughputBps: d.throughputBps, bytes: d.bytes, bottleneck: bottleneck(bandwidth ?? Infinity, d.throughputBps)}
  }

  report.interrupted = Boolean(options.signal?.aborted)
  report.budget.usedMs = Math.round(performance.now() - started)
  report.budget.usedBytes = maxBytes - budget.remaining
  // A run where no mirror answered, or one of a file too small to measure, must not replace the last useful results.
  if (options.save !== false && report.mirrors.some((m) => m.ok) && !report.tooSmall) {
    const path = benchResultsPath(options.env)
    try {
      writeOwnFile(path, () => writeFileSync(path, JSON.stringify(report, null, 2) + '\n'))
      report.savedTo = path
    } catch (error) {
      // A read-only home is no reason to lose the measurements: they are printed anyway, and
      // what doctor, tune and pull --auto will not see is said.
      report.notSaved = {path, reason: (error as NodeJS.ErrnoException).code ?? errorMessage(error)}
    }
  }
  return report
}
