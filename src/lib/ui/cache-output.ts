import type {CacheStatus} from '../cache/report.js'
import type {ServeResult} from '../cache/serve.js'
import type {WarmReport} from '../cache/warm-source.js'
import {formatBytes, formatElapsed} from '../units.js'
import {mark} from './colors.js'

export function renderServe(r: ServeResult): string {
  const e = r.state.endpoints
  const lines = [
    r.alreadyRunning
      ? `${mark.ok()} already running (nginx pid ${r.pid}) at ${r.state.url}, serving ${r.state.dir}`
      : r.reloaded
        ? `${mark.ok()} cache reloaded with the new settings (nginx pid ${r.pid}) at ${r.state.url}, in ${r.state.dir}: cached files kept, requests in flight finish`
        : `${mark.ok()} cache running (nginx pid ${r.pid}) at ${r.state.url}, in ${r.state.dir}`,
    '',
    'On each server:',
    // Both values are the cache's URL, so the comments line up.
    `  export HF_ENDPOINT=${e.hf}   # huggingface_hub, transformers, huggingface.js, mtune`,
    `  export MTUNE_CACHE=${r.state.url}   # mtune pull hf://, ollama://, modelscope://${Object.keys(e.origins).length ? ' and URLs under the origins below' : ''} through the cache`,
    `  export MODELSCOPE_ENDPOINT=${e.modelscope}`,
    // Servers with the site's proxy set would otherwise send the rack's traffic out through it.
    `  export NO_PROXY=\${NO_PROXY:+\$NO_PROXY,}${new URL(r.state.url).hostname}   # where HTTPS_PROXY/HTTP_PROXY is set: keep the rack's traffic off the proxy`,
    `  ollama pull ${e.ollama}/library/MODEL --insecure   # the model is then named ${e.ollama}/library/MODEL`,
    ...Object.entries(e.origins).map(([name, url]) => `  ${name}: ${url}/PATH${r.state.settings ? `   # = ${r.state.settings.origins[name]}/PATH` : ''}`),
    '',
    `Watch it: mtune cache status --dir ${r.state.dir}; stop it: mtune cache stop --dir ${r.state.dir}`,
  ]
  return lines.join('\n')
}

/** Where other caches of this host run, after a line that found none where it looked: "" when none does. */
export function elsewhereWords(others: Array<{dir: string; listen: string}>, command: string): string {
  const [first] = others
  if (!first) return ''
  return `; ${others.length === 1 ? 'one runs' : `${others.length} run, one`} in ${first.dir} (${first.listen}): mtune cache ${command} --dir ${first.dir}`
}

export function renderStatus(s: CacheStatus): string {
  // A DIR that never held a cache (a typo, say): one line, not a table of zeros.
  const elsewhere = elsewhereWords(s.runningElsewhere, 'status')
  if (!s.running && !s.endpoints && s.requests === 0 && s.disk.usedBytes === 0) return `${mark.fail()} no cache in ${s.dir}: start one with mtune cache serve --dir ${s.dir}${elsewhere}`
  const lines = [
    s.running
      ? `${mark.ok()} running (nginx pid ${s.pid})${s.answering ? '' : ', but not answering'} at ${s.url ?? '?'}`
      : s.leftover.length
        ? `${mark.fail()} not running (${s.dir}): its nginx master died, and left processes running (pids ${s.leftover.join(', ')}); mtune cache serve --dir ${s.dir} ends them and starts it again`
        : `${mark.fail()} not running (${s.dir}); start it with mtune cache serve --dir ${s.dir}${elsewhere}`,
  ]
  if (s.endpoints) lines.push(`  HF_ENDPOINT ${s.endpoints.hf}   Ollama ${s.endpoints.ollama}   ModelScope ${s.endpoints.modelscope}`)
  lines.push(`  disk       ${formatBytes(s.disk.usedBytes)}${s.disk.maxBytes ? ` of ${formatBytes(s.disk.maxBytes)} (--max-size; least recently used files go first beyond it)` : ''}`)
  if (s.disk.freeBytes !== null) {
    const kept = s.disk.minFreeBytes ? `, of which ${formatBytes(s.disk.minFreeBytes)} is kept free (--min-free)` : ''
    lines.push(`             ${formatBytes(s.disk.freeBytes)} free on its disk${kept}`)
  }
  const failed = s.failed ? ` (${s.failed} answered 5xx: see ${s.dir}/logs/error.log)` : ''
  lines.push(`  requests   ${s.requests}${failed}; cached slices: ${s.hits} hits, ${s.misses} misses${s.hitRatio !== undefined ? ` (hit ratio ${(s.hitRatio * 100).toFixed(1)}%)` : ''}`)
  const saved = s.bytesServed > 0 ? ` (${((1 - s.bytesUpstream / s.bytesServed) * 100).toFixed(1)}% saved)` : ''
  lines.push(`  bytes      ${formatBytes(s.bytesUpstream)} fetched upstream, ${formatBytes(s.bytesServed)} served${s.bytesServed > s.bytesUpstream ? saved : ''}`)
  // What the rack pulled lately: the first few, most recent first (--json has them all).
  for (const [i, m] of s.models.slice(0, 5).entries()) {
    lines.push(`  ${i === 0 ? 'asked for ' : '          '} ${m.name} (${m.requests} request${m.requests === 1 ? '' : 's'}, last ${m.lastAt.slice(0, 16).replace('T', ' ')} UTC)`)
  }
  if (s.models.length > 5) lines.push(`             and ${s.models.length - 5} more (--json lists them)`)
  return lines.join('\n')
}

/** One line per file whose bytes are not what was published, then one line for the model. */
export function renderWarm(r: WarmReport): string {
  const lines: string[] = []
  for (const f of r.files) {
    if (f.verified === false) lines.push(`${mark.fail()} ${f.name}: the cache serves other bytes than were published (${f.got?.slice(0, 12)}...): clients refuse them and fall back to the origin`)
  }
  const fetched = r.bytes - r.cachedBytes
  const share = r.bytes > 0 ? ` (${((r.cachedBytes / r.bytes) * 100).toFixed(0)}% was cached already)` : ''
  const checked = r.files.some((f) => f.verified === null) ? (r.files.every((f) => f.verified === null) ? ', no digest to check it against' : ', verified where a digest is published') : ', verified'
  const where = r.cache.replace(/\/$/, '')
  if (!r.intact) {
    lines.push(`${mark.fail()} ${r.source}: not intact in the cache at ${where}: clear its cache/ folder (mtune cache stop; remove DIR/cache/*; mtune cache serve) and warm it again`)
    return lines.join('\n')
  }
  lines.push(
    `${mark.ok()} ${r.source}: ${r.files.length} file${r.files.length === 1 ? '' : 's'}, ${formatBytes(r.bytes)} in the cache at ${where}${share}; ${formatBytes(fetched)} fetched upstream in ${formatElapsed(r.seconds)}${checked}`,
  )
  return lines.join('\n')
}
