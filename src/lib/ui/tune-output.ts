import type {TuneReport} from '../tune/run.js'
import {linkOrigin} from '../bench/link.js'
import {formatBitRate} from '../units.js'
import {chalk, mark} from './colors.js'

export function describeLink(link: TuneReport['link']): string {
  if (!link.bandwidthBps || !link.rttMs) {
    return `bandwidth${link.rttMs ? '' : ' and RTT'} unknown: give --bandwidth${link.rttMs ? '' : ' and --rtt'} (or run mtune bench) to size TCP buffers`
  }
  return `path: ${formatBitRate(link.bandwidthBps)} x ${link.rttMs} ms (${linkOrigin(link)})`
}

export function renderSuggestions(report: TuneReport, rerun: string): string {
  const lines = [describeLink(report.link), '']
  const width = Math.max(...report.knobs.map((k) => k.id.length), 10)
  for (const k of report.knobs) {
    const id = k.id.padEnd(width)
    if (k.action === 'change') lines.push(`  ${mark.warn()} ${id}  ${k.current ?? '?'} -> ${chalk.bold(k.recommended)}  ${chalk.dim(k.reason)}`)
    else if (k.action === 'keep') lines.push(`  ${mark.ok()} ${id}  ${k.current} ${chalk.dim('(already good)')}`)
    else lines.push(`  ${chalk.dim('-')} ${id}  ${chalk.dim(`unavailable: ${k.reason}`)}`)
  }
  if (report.noDisk) lines.push(`  ${chalk.dim('-')} ${'disk'.padEnd(width)}  ${chalk.dim(report.noDisk)}`)
  const commands = report.knobs.filter((k) => k.action === 'change').flatMap((k) => k.commands)
  if (commands.length === 0) return [...lines, '', `${mark.ok()} Nothing to change.`].join('\n')
  lines.push('', 'Commands an admin would run:')
  for (const c of commands) lines.push(`  sudo ${c.startsWith('echo ') ? `sh -c '${c}'` : c}`)
  lines.push('', `Apply them all (originals saved, undo with sudo mtune tune --rollback): sudo ${rerun} --apply`)
  return lines.join('\n')
}

export function renderResults(report: TuneReport, statePath: string): string {
  const lines: string[] = []
  if (report.mode === 'rollback' && report.nothingToRollBack) return `${mark.ok()} Nothing to roll back: no saved originals at ${statePath}.`
  for (const r of report.results) {
    if (r.status === 'applied') lines.push(`  ${mark.ok()} ${r.id}: ${r.before ?? '?'} -> ${r.after}`)
    else if (r.status === 'restored') lines.push(`  ${mark.ok()} ${r.id}: restored to ${r.after}`)
    else if (r.status === 'unchanged') lines.push(`  ${chalk.dim('=')} ${r.id}: unchanged (${r.after ?? '?'})`)
    else if (r.status === 'unavailable') lines.push(`  ${chalk.dim('-')} ${r.id}: unavailable here, not changed (${r.error ?? 'not in this kernel'})`)
    else lines.push(`  ${mark.fail()} ${r.id}: ${r.error}`)
  }
  const unavailable = report.results.filter((r) => r.status === 'unavailable')
  if (report.mode === 'apply' && unavailable.length > 0 && !report.results.some((r) => r.status === 'failed')) {
    lines.push('', `${mark.ok()} Everything this system can have was applied; ${unavailable.length} setting${unavailable.length > 1 ? 's are' : ' is'} unavailable here (${unavailable.map((r) => r.id).join(', ')}).`)
  }
  for (const p of report.persisted) lines.push(`  ${mark.ok()} wrote ${p}`)
  for (const p of report.removed) lines.push(`  ${mark.ok()} removed ${p}`)
  if (report.mode === 'apply') lines.push('', `Originals saved in ${statePath}; undo with: sudo mtune tune --rollback`)
  return lines.join('\n')
}
