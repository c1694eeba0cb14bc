import type {BenchReport} from '../bench/run.js'
import {formatBitRate, formatBytes, formatRate} from '../units.js'
import {chalk, mark} from './colors.js'

const ms = (v?: {median: number}) => (v ? `${v.median < 10 ? v.median.toFixed(1) : Math.round(v.median)} ms` : '-')

/**
 * Columns padded to their widest cell. A row shorter than the header ends in a cell that runs on
 * past the columns (a mirror's failure, which may be a sentence): it sets no column's width.
 */
function table(rows: string[][]): string[] {
  const runsOn = (r: string[], i: number) => r.length < rows[0].length && i === r.length - 1
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (runsOn(r, i) ? 0 : stripAnsi(r[i] ?? '').length))))
  return rows.map((r) => r.map((c, i) => (runsOn(r, i) ? c : c + ' '.repeat(widths[i] - stripAnsi(c).length))).join('  ').trimEnd())
}

// eslint-disable-next-line no-control-regex
const stripAnsi = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '')

const bar = (value: number, max: number, width = 20) => chalk.cyan('█'.repeat(Math.max(0, Math.round((value / Math.max(max, 1)) * width))))

export function renderBench(report: BenchReport, tty: boolean): string {
  const out: string[] = [chalk.bold('Mirrors')]
  const rows = [['', 'mirror', 'DNS', 'connect', 'TLS', 'first byte', 'one stream (median, min-max)']]
  report.mirrors.forEach((m, i) => {
    if (!m.ok) rows.push([mark.fail(), m.url, chalk.red(m.reason ?? 'failed')])
    else {
      const t = m.throughputBps!
      // Behind a proxy the tunnel and TLS are one step, shown in the connect column with the proxy
      // named; plain http that the proxy forwards shows the connection to the proxy.
      const connect = m.tunnelMs
        ? `${ms(m.tunnelMs)} via proxy ${m.proxy ?? ''}`.trim()
        : m.proxyConnectMs
          ? `${ms(m.proxyConnectMs)} to proxy ${m.proxy ?? ''} (forwards)`
          : m.proxy
            ? `via proxy ${m.proxy}`
            : ms(m.connectMs)
      rows.push([`${i + 1}`, m.url, ms(m.dnsMs), connect, m.tunnelMs || (m.proxy && m.url.startsWith('https:')) ? 'in tunnel' : ms(m.tlsMs), ms(m.ttfbMs), `${formatRate(t.median)} (${formatRate(t.min)}-${formatRate(t.max)})`])
    }
  })
  out.push(...table(rows).map((l) => `  ${l}`))

  for (const g of report.grids) {
    if (g.cells.length === 0) continue
    out.push('', chalk.bold(`Connections x chunk size on ${g.url}`))
    const chunks = [...new Set(g.cells.map((c) => c.chunkSize))]
    const counts = [...new Set(g.cells.map((c) => c.connections))]
    const best = Math.max(...g.cells.map((c) => c.throughputBps))
    const grid = [['connections', ...chunks.map((k) => formatBytes(k))]]
    for (const n of counts) {
      const row = chunks.map((k) => {
        const c = g.cells.find((x) => x.connections === n && x.chunkSize === k)
        if (!c) return '-'
        const text = formatRate(c.throughputBps) + (c.throttled ? ' (429)' : '')
        return g.advice && c.connections === g.advice.connections && c.chunkSize === g.advice.chunkSize ? chalk.bold(`${text} *`) : text
      })
      const rowBest = Math.max(...g.cells.filter((c) => c.connections === n).map((c) => c.throughputBps))
      grid.push([String(n), ...row, ...(tty ? [bar(rowBest, best)] : [])])
    }
    if (tty) grid[0].push('')
    out.push(...table(grid).map((l) => `  ${l}`))
    if (g.skipped.length) {
      const cells = g.skipped.map((s) => `${s.connections} x ${formatBytes(s.chunkSize)}`).join(', ')
      const shares = g.skipped.map((s) => s.share)
      const [low, high] = [formatBytes(Math.min(...shares)), formatBytes(Math.max(...shares))]
      out.push(`  ${mark.warn()} not measured: ${cells}: one request on each connection needs more than the cell's share of --max-bytes (${low === high ? low : `${low}-${high}`}); a larger --max-bytes, or fewer --connections/--chunk-size, measures them`)
    }
    if (g.answeredAtMost !== undefined) {
      out.push(`  ${mark.warn()} this mirror answers at most ${formatBytes(g.answeredAtMost)} of a range per request: the chunk sizes above it measure ${formatBytes(g.answeredAtMost)} (mtune pull asks again for the rest)`)
    }
  }

  out.push('')
  if (report.recommendation) {
    const r = report.recommendation
    out.push(`${mark.ok()} Recommended: ${r.connections} connection${r.connections === 1 ? '' : 's'} x ${formatBytes(r.chunkSize)} chunks on ${r.mirror}`)
    out.push(`  because ${r.reason}`)
    out.push(`  ${r.command}`)
  } else if (report.mirrors.every((m) => !m.ok)) out.push(`${mark.fail()} No mirror answered a ranged request: nothing to recommend.`)
  if (report.link && report.buffers) {
    const b = report.buffers
    const path = `${formatBitRate(report.link.bandwidthBps)} x ${report.link.rttMs} ms RTT = ${formatBytes(b.bdp)} BDP`
    if (b.ok) out.push(`${mark.ok()} TCP buffers carry this path: ${path}; rmem_max ${formatBytes(b.rmemMax ?? 0)}, tcp_rmem max ${formatBytes(b.tcpRmemMax ?? 0)} >= 2 x BDP`)
    else {
      out.push(`${mark.warn()} TCP buffers are too small for this path: ${path} needs ${formatBytes(b.needed)}; one stream is held to ${formatRate(b.perStreamCapBps ?? 0)}`)
      out.push(`  fix: sudo mtune tune --apply (it reads these measurements)`)
    }
  }
  if (report.tooSmall) {
    const t = report.tooSmall
    out.push(`${mark.info()} ${t.url} is ${formatBytes(t.size)}: too small to measure the link, connections or chunk sizes (${formatBytes(t.needed)} or more: a model's weights); not saved, so doctor, tune and pull --auto keep the last measurement`)
  }
  if (report.disk) {
    const d = report.disk
    out.push(`${d.bottleneck === 'disk' ? mark.warn() : mark.ok()} Disk ${d.path}: ${formatRate(d.throughputBps)} sequential writes: the ${d.bottleneck} is the bottleneck`)
  }
  if (report.interrupted) out.push(`${mark.warn()} Interrupted: these are the measurements made so far.`)
  out.push(chalk.dim(`Used ${(report.budget.usedMs / 1000).toFixed(1)} s of ${(report.budget.ms / 1000).toFixed(0)} s and ${formatBytes(report.budget.usedBytes)} of ${formatBytes(report.budget.maxBytes)}.`))
  if (report.savedTo) out.push(chalk.dim(`Saved to ${report.savedTo} (doctor, tune and pull --auto read it).`))
  if (report.notSaved) {
    out.push(`${mark.warn()} Not saved to ${report.notSaved.path} (${report.notSaved.reason}): doctor, tune and pull --auto will not see these results; set XDG_CACHE_HOME to a writable directory`)
  }
  return out.join('\n')
}
