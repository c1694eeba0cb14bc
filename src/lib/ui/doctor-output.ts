import type {Finding, Group, Status} from '../doctor/finding.js'
import {GROUPS} from '../doctor/finding.js'
import {formatBytes, formatRate} from '../units.js'
import {chalk, mark} from './colors.js'

const MARKS: Record<Status, () => string> = {
  pass: mark.ok,
  warn: mark.warn,
  fail: mark.fail,
  info: mark.info,
  unknown: () => chalk.dim('?'),
}

const TITLES: Record<Group, string> = {disk: 'Disk', memory: 'Memory', gpu: 'GPU', network: 'Network', io: 'Disk I/O', env: 'Environment'}

/** flutter doctor's shape: a heading per group, one line per check, the fix under problems. */
export function renderFindings(findings: Finding[], verbose: boolean): string {
  const lines: string[] = []
  for (const group of GROUPS) {
    const mine = findings.filter((f) => f.group === group)
    if (mine.length === 0) continue
    lines.push(chalk.bold(TITLES[group]))
    for (const f of mine) {
      lines.push(`  [${MARKS[f.status]()}] ${f.title}: ${f.summary}`)
      if (f.fix && (verbose || f.status === 'warn' || f.status === 'fail')) lines.push(`      ${chalk.cyan('fix:')} ${f.fix}`)
      if (verbose) {
        for (const d of f.details ?? []) lines.push(`      ${d}`)
        for (const [k, v] of Object.entries(f.values)) {
          if (v.value !== null) lines.push(chalk.dim(`      ${k}: ${shownValue(v.value, v.unit)}`))
        }
      }
    }
  }
  return lines.join('\n')
}

/** A value as --verbose shows it: measured numbers rounded, sizes and rates also in binary units. */
export function shownValue(value: string | number | boolean, unit?: string): string {
  if (typeof value !== 'number') return `${value}${unit ? ` ${unit}` : ''}`
  const n = Number.isInteger(value) ? value : Math.abs(value) >= 100 ? Math.round(value) : Number(value.toPrecision(3))
  const readable = unit === 'bytes' && n >= 1024 ? ` (${formatBytes(n)})` : unit === 'bytes/s' && n >= 1024 ? ` (${formatRate(n)})` : ''
  return `${n}${unit ? ` ${unit}` : ''}${readable}`
}

export function summaryLine(counts: Record<Status, number>): string {
  const parts: string[] = []
  if (counts.fail) parts.push(`${counts.fail} failure${counts.fail > 1 ? 's' : ''}`)
  if (counts.warn) parts.push(`${counts.warn} warning${counts.warn > 1 ? 's' : ''}`)
  if (counts.unknown) parts.push(`${counts.unknown} unknown`)
  if (parts.length === 0) return `${mark.ok()} No issues found.`
  return `${counts.fail ? mark.fail() : mark.warn()} ${parts.join(', ')}.`
}
