import type {FileResult} from '../sources/run-plan.js'
import {planTotals, type Plan, type PlannedFile} from '../sources/plan.js'
import type {PullResult} from '../transfer/engine.js'
import type {UrlDryRun} from '../sources/url-dry-run.js'
import {formatBytes, formatElapsed, formatRate} from '../units.js'
import {mark} from './colors.js'

export function describeResult(r: PullResult): string {
  if (r.alreadyComplete && r.pulledByAnother) {
    return `${mark.ok()} ${r.path} is complete: another mtune pulled it from this URL while this one waited (${formatBytes(r.size)})\n  sha256 ${r.sha256}${r.verified ? ' (verified)' : ''}`
  }
  if (r.alreadyComplete) return `${mark.ok()} ${r.path} is already complete (${formatBytes(r.size)}, sha256 verified)`
  // An empty file needs no range request: "0 B/s, up to 0 connections" would read as a failure.
  const how = r.size === 0 ? 'an empty file' : `${formatRate(r.averageRate)}, up to ${plural(r.connections, 'connection')}, ${r.retries} ${r.retries === 1 ? 'retry' : 'retries'}`
  const lines = [
    `${mark.ok()} ${r.path}  ${formatBytes(r.size)} in ${formatElapsed(r.seconds)} (${how})`,
    `  sha256 ${r.sha256}${r.verified ? ' (verified)' : ''}`,
  ]
  if (r.resumedBytes > 0) lines.push(`  resumed with ${formatBytes(r.resumedBytes)} already on disk`)
  return lines.join('\n')
}

const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`

/**
 * `held`: bytes of a file not present already downloaded by a partial download (sources/held.ts
 * downloadedOnDisk), which the pull resumes; `busy`: another mtune is pulling that file now (the
 * ranks of a job), which this pull will wait for rather than resume.
 */
export function describePlan(plan: Plan, listFiles: boolean, held: (f: PlannedFile) => number = () => 0, busy: (f: PlannedFile) => boolean = () => false): string {
  const t = planTotals(plan)
  const partial = plan.files.filter((f) => !f.present).map((f) => ({f, bytes: held(f), busy: busy(f)}))
  const partly = partial.filter((h) => h.bytes > 0 && !h.busy)
  const pulling = partial.filter((h) => h.busy)
  const sum = (hs: typeof partial) => formatBytes(hs.reduce((total, h) => total + h.bytes, 0))
  const lines = [
    // A list of URLs knows its sizes only once each answers.
    `${plan.source}${plan.version ? ` (${plan.version})` : ''}: ${plural(t.files, 'file')}${plan.files.some((f) => f.size === undefined) ? '' : `, ${formatBytes(t.bytes)}`}` +
      `${t.presentFiles ? `, ${t.presentFiles} already present (${formatBytes(t.presentBytes)})` : ''}` +
      `${partly.length ? `, ${partly.length} partly downloaded (${sum(partly)} on disk, resumed)` : ''}` +
      `${pulling.length ? `, ${pulling.length} being pulled by another mtune (${sum(pulling)} on disk so far)` : ''} -> ${plan.root}`,
  ]
  if (listFiles) {
    const on = new Map(partial.map((h) => [h.f, h]))
    for (const f of plan.files) {
      const h = on.get(f)
      const label = f.present ? 'present ' : h?.busy ? 'pulling ' : h?.bytes ? 'resumes ' : 'to pull '
      const note = h?.busy ? ` (${formatBytes(h.bytes)} on disk, another mtune is pulling it)` : h?.bytes ? ` (${formatBytes(h.bytes)} on disk)` : ''
      lines.push(`  ${label} ${(f.size === undefined ? '?' : formatBytes(f.size)).padStart(10)}  ${f.name}${note}`)
    }
  }
  return lines.join('\n')
}

/**
 * "2 pulled (60.0 MiB in 1.4s)", with how much of it an interrupted pull had left (else the time
 * reads as this run's rate), and the files another mtune put in place while this one waited
 * (neither fetched nor resumed by this one).
 */
function pulledWords(pulled: FileResult[], seconds: number): string {
  const own = pulled.filter((r) => !r.pulledByAnother)
  const handed = pulled.length - own.length
  const byAnother = `by another mtune while this one waited`
  if (own.length === 0) return `${handed} pulled ${byAnother}`
  const bytes = own.reduce((sum, r) => sum + r.size, 0)
  const resumed = own.reduce((sum, r) => sum + (r.resumedBytes ?? 0), 0)
  const words = `${own.length} pulled (${formatBytes(bytes)} in ${formatElapsed(seconds)}${resumed > 0 ? `, ${formatBytes(resumed)} of it resumed from disk` : ''})`
  return handed ? `${words}, ${handed} ${byAnother}` : words
}

/**
 * `rehashed`: pull --verify hashed the files already present too. `cache`: the rack cache the
 * bytes came through (a fallback to the origin has already said so in a warning).
 */
export function describeFiles(plan: Plan, results: FileResult[], seconds: number, rehashed = false, cache?: string): string {
  const pulled = results.filter((r) => !r.skipped)
  const present = results.length - pulled.length
  if (pulled.length === 0) {
    return `${mark.ok()} ${plan.source}: already complete, ${present} file${present === 1 ? '' : 's'} present${rehashed ? ' and re-hashed: intact' : ' (found by size; --verify or mtune verify re-hashes them)'} -> ${plan.root}`
  }
  const presentWords = present === 0 ? '' : `, ${present} already present${rehashed ? ' (re-hashed)' : ''}`
  const through = cache ? ` through the cache at ${cache}` : ''
  return `${mark.ok()} ${plan.source}: ${pulledWords(pulled, seconds)}${through}, verified${presentWords} -> ${plan.root}`
}

/** A list's result (pull -i): what was pulled, and how many of them were checked against a digest the list gave. */
export function describeList(plan: Plan, results: FileResult[], seconds: number, cache?: string): string {
  const pulled = results.filter((r) => !r.skipped)
  const present = results.length - pulled.length
  const digests = plan.files.filter((f) => f.sha256 && !f.present).length
  const checked = digests === pulled.length ? ', verified' : digests ? `, ${digests} verified against the list's digests` : ''
  const through = cache ? ` through the cache at ${cache}` : ''
  const kept = present ? `, ${present} already present (their digests match)` : ''
  if (pulled.length === 0) return `${mark.ok()} ${plan.source}: already complete, ${present} file${present === 1 ? '' : 's'} present (their digests match) -> ${plan.root}`
  return `${mark.ok()} ${plan.source}: ${pulledWords(pulled, seconds)}${through}${checked}${kept} -> ${plan.root}`
}

/** The plan as JSON, stable and free of functions. */
export function planJson(plan: Plan) {
  const t = planTotals(plan)
  return {
    source: plan.source,
    version: plan.version,
    root: plan.root,
    layout: plan.layout,
    totalBytes: t.bytes,
    presentBytes: t.presentBytes,
    notes: plan.notes,
    files: plan.files.map((f) => ({name: f.name, path: f.dest, size: f.size, sha256: f.sha256, gitSha1: f.gitSha1, present: f.present})),
  }
}

/**
 * `pull URL --dry-run`, in the words of a model's plan: the file and where it goes, then what
 * is there already and what the pull would do with it. `force`: an existing file is replaced.
 */
export function describeUrlDryRun(d: UrlDryRun, force = false): string {
  const size = d.size === null ? 'size not given' : formatBytes(d.size)
  const how = d.ranges ? 'ranges answered' : 'no ranges: one stream, started again if cut'
  const lines = [`${d.url}${d.cache ? ` (through the cache at ${d.cache})` : ''}: ${size}, ${how} -> ${d.path}`]
  if (d.finalUrl) lines.push(`  from ${d.finalUrl}`)
  if (d.publishedSha256) lines.push(`  checked against the sha256 the server publishes, ${d.publishedSha256}`)
  const on = d.onDisk
  if (on.state === 'part') {
    lines.push(on.holder ? `  another mtune is pulling it now (${on.holder}, ${formatBytes(on.bytes)} on disk): this pull would wait for it` : `  ${formatBytes(on.bytes)} of it on disk from a pull that was cut: resumed`)
  } else if (on.state === 'leftover') {
    lines.push(on.of === 'aria2c' ? `  aria2c's download of it is there (${formatBytes(on.bytes)}): taken over` : `  ${formatBytes(on.bytes)} there: kept as the file's start (--continue)`)
  } else if (on.state === 'file') {
    const there = `  a file of ${formatBytes(on.bytes)} is there`
    lines.push(
      force
        ? `${there}: replaced (--force)`
        : on.pulledAt
          ? `${there}, pulled from this URL by mtune on ${on.pulledAt.slice(0, 10)}: kept if it still has that pull's sha256`
          : `${there}: kept if it checks against --sha256 or a digest the server publishes, else refused without --force`,
    )
  }
  if (d.freeBytes !== null) lines.push(`  ${formatBytes(d.freeBytes)} free there`)
  lines.push(`  nothing written (--dry-run)`)
  return lines.join('\n')
}
