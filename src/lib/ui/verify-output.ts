import {findings, type Finding, type VerifyReport} from '../verify/run.js'
import {formatBytes, formatRate} from '../units.js'
import {chalk, mark} from './colors.js'

const WORDS: Record<string, string> = {
  corrupt: 'corrupt',
  truncated: 'truncated',
  missing: 'missing',
  dangling: 'dangling link',
  incomplete: 'left over',
  unreadable: 'unreadable',
}

/** One line per problem, then the summary; --quiet leaves only the problems. */
export function renderVerify(r: VerifyReport, quiet = false): string {
  const line = (f: Finding) => `${mark.fail()} ${f.name}: ${WORDS[f.status] ?? f.status}${f.detail ? ` (${f.detail})` : ''}`
  const now = findings(r.files, r.problems).map(line)
  if (quiet) return now.join('\n')
  // After a repair the report is the check that followed it: what was wrong comes first.
  const lines = [...(r.repair?.attempted ? r.repair.found.map(line) : []), ...now]
  for (const n of r.notes) lines.push(`${mark.info()} ${n}`)
  const s = r.summary
  const against = {hub: "the hub's digests", disk: 'the digests in the blob names', manifest: 'the manifest\'s digests', sha256: 'the given sha256'}[r.against]
  const rate = s.seconds > 0 && s.bytesHashed > 0 ? `, ${formatRate(s.bytesHashed / s.seconds)}` : ''
  const counts = (['corrupt', 'truncated', 'missing', 'dangling', 'incomplete', 'unreadable'] as const).filter((k) => s[k] > 0).map((k) => `${s[k]} ${WORDS[k]}`)
  if (r.repair) {
    if (!r.repair.attempted) lines.push(`${mark.warn()} not repaired: ${r.repair.reason}`)
    else lines.push(`${r.repair.intact ? mark.ok() : mark.fail()} ${repaired(r.repair)}`)
  }
  const head = r.intact ? `${mark.ok()} ${chalk.bold('intact')}` : `${mark.fail()} ${chalk.bold('not intact')}: ${counts.join(', ')}`
  lines.push(`${head}: ${s.ok} of ${s.files} file${s.files === 1 ? '' : 's'} checked against ${against}; ${formatBytes(s.bytesHashed)} hashed in ${s.seconds.toFixed(1)} s${rate}${s.unchecked ? `; ${s.unchecked} with nothing to check against` : ''}`)
  if (!r.intact && !r.repair) lines.push(`  fix: ${fix(r)}`)
  return lines.join('\n')
}

/** What --repair did: the files fetched again, and the links written again to good blobs. */
function repaired(r: {files: string[]; links: string[]}): string {
  const files = (names: string[]) => `${names.length} file${names.length === 1 ? '' : 's'}`
  const done = [
    ...(r.files.length ? [`fetched ${files(r.files)}: ${r.files.join(', ')}`] : []),
    ...(r.links.length ? [`linked ${files(r.links)} again (the blob was good): ${r.links.join(', ')}`] : []),
  ]
  return done.length ? `repaired: ${done.join('; ')}` : 'repaired: links, refs and manifests written again'
}

/**
 * A model is fetched again from its hub with --repair; a plain file has no source on record, so
 * --repair could only refuse: name the pull that fixes it instead, with the digest it must have.
 */
function fix(r: VerifyReport): string {
  if (r.kind !== 'file') return `mtune verify ${r.target} --repair`
  const expected = r.files[0]?.expected ?? 'HEX'
  return `pull it again from where it came: mtune pull URL -o ${r.target} --sha256 ${expected}`
}
