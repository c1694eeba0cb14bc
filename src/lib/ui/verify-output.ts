import {resolve} from 'node:path'
import {findings, type Finding, type VerifyReport} from '../verify/run.js'
import {fewNames, formatBytes, formatRate} from '../units.js'
import {chalk, mark} from './colors.js'
import {shellWord} from './shell-words.js'

const WORDS: Record<string, string> = {
  corrupt: 'corrupt',
  truncated: 'truncated',
  missing: 'missing',
  dangling: 'dangling link',
  incomplete: 'left over',
  interrupted: 'interrupted',
  unreadable: 'unreadable',
}

/** The words after `mtune verify` and `mtune pull` that name what was checked (source, --local-dir...). */
export interface Again {
  verify: string[]
  pull: string[]
  /** Set before `mtune pull` (`HF_HUB_CACHE=DIR `): a cache folder of another cache than the user's is pulled into that one. */
  pullEnv?: string
}

/**
 * One line per problem, then the summary; --quiet leaves only the problems. `again`: the
 * commands that fix what is found, for the same files (the same tree, revision, globs).
 */
export function renderVerify(r: VerifyReport, quiet = false, again: Again = {verify: [r.target], pull: [r.target]}): string {
  const line = (f: Finding) => `${mark.fail()} ${f.name}: ${WORDS[f.status] ?? f.status}${f.detail ? ` (${f.detail})` : ''}`
  const now = findings(r.files, r.problems).map(line)
  if (quiet) return now.join('\n')
  // After a repair the report is the check that followed it: what was wrong comes first.
  const lines = [...(r.repair?.attempted ? r.repair.found.map(line) : []), ...now]
  for (const n of r.notes) lines.push(`${mark.info()} ${n}`)
  if (r.notPulled.length) lines.push(`${mark.info()} ${notPulled(r.notPulled)}; ${again.pullEnv ?? ''}mtune pull ${again.pull.map(shellWord).join(' ')} fetches ${r.notPulled.length === 1 ? 'it' : 'them'}`)
  const s = r.summary
  const against = {hub: "the hub's digests", disk: 'the digests in the blob names', manifest: 'the manifest\'s digests', sha256: 'the given sha256', list: `the digests in ${r.checksumList}`, each: 'the digests found for each (FILE.sha256, SHA256SUMS, blob names)', header: 'what their own headers say', record: "the digests huggingface_hub recorded", pulled: 'the sha256 mtune pull recorded'}[r.against]
  const rate = s.seconds > 0 && s.bytesHashed > 0 ? `, ${formatRate(s.bytesHashed / s.seconds)}` : ''
  const counts = (['corrupt', 'truncated', 'missing', 'dangling', 'incomplete', 'interrupted', 'unreadable'] as const).filter((k) => s[k] > 0).map((k) => `${s[k]} ${WORDS[k]}`)
  if (r.repair) {
    if (!r.repair.attempted) lines.push(`${mark.warn()} not repaired: ${r.repair.reason}`)
    else lines.push(`${r.repair.intact ? mark.ok() : mark.fail()} ${repaired(r.repair)}`)
    // Attempted for some files only: why not the others.
    if (r.repair.attempted && r.repair.reason) lines.push(`${mark.warn()} not repaired: ${r.repair.reason}`)
  }
  // Sizes alone say complete, not intact: the bytes were not checked.
  const word = r.against === 'header' ? 'complete' : 'intact'
  const head = r.intact ? `${mark.ok()} ${chalk.bold(word)}:` : `${mark.fail()} ${chalk.bold(`not ${word}`)}: ${counts.join(', ')};`
  // Sizes from headers hash nothing: no "0 B hashed".
  const hashed = r.against === 'header' && s.bytesHashed === 0 ? '' : `; ${formatBytes(s.bytesHashed)} hashed in ${s.seconds.toFixed(1)} s${rate}`
  // A file whose header is not its format's is a problem (nothing to size it by), but still one of
  // the files; so is one whose pull was interrupted (not there yet: nothing hashed).
  const files = s.files + s.interrupted + (r.against === 'header' ? r.problems.filter((p) => p.kind === 'corrupt' || p.kind === 'truncated').length : 0)
  lines.push(`${head} ${s.ok} of ${files} file${files === 1 ? '' : 's'} ${files === 1 ? 'matches' : 'match'} ${against}${hashed}${s.unchecked ? `; ${s.unchecked} with nothing to check against` : ''}`)
  if (!r.intact && !r.repair) lines.push(`  fix: ${fix(r, again)}`)
  return lines.join('\n')
}

/** What --repair did: the files fetched again, and the links written again to good blobs. */
function repaired(r: {files: string[]; links: string[]; via?: string}): string {
  const files = (names: string[]) => `${names.length} file${names.length === 1 ? '' : 's'}`
  const done = [
    ...(r.files.length ? [`fetched ${files(r.files)}${r.via ? ` through the cache at ${r.via}` : ''}: ${r.files.join(', ')}`] : []),
    ...(r.links.length ? [`linked ${files(r.links)} again (the blob was good): ${r.links.join(', ')}`] : []),
  ]
  return done.length ? `repaired: ${done.join('; ')}` : 'repaired: links, refs and manifests written again'
}

/**
 * A model is fetched again from its hub with --repair; a plain file has no source on record, so
 * --repair could only refuse: name the pull that fixes it instead, with the digest it must have.
 */
function fix(r: VerifyReport, again: Again): string {
  if (r.kind !== 'file') return `mtune verify ${again.verify.map(shellWord).join(' ')} --repair`
  if (r.fix) return r.fix
  // Pulled from URLs mtune recorded whole: --repair fetches them there again.
  if (r.against === 'pulled') return `mtune verify ${again.verify.map(shellWord).join(' ')} --repair`
  const bad = r.files.filter((f) => f.status !== 'ok')
  // The tree's repo is not recorded; its hub has the files.
  if (r.against === 'record') return `mtune verify hf://ORG/NAME --local-dir ${shellWord(r.target)} --repair (the repo it was pulled from)`
  if (r.against === 'header') {
    const one = bad.length + r.problems.length === 1
    const dir = r.root === resolve(r.target) ? shellWord(r.target) : 'DIR'
    return `fetch ${one ? 'it' : 'them'} again from where ${one ? 'it' : 'they'} came (mtune pull URL -o PATH); a model's hub has the digests: mtune verify hf://ORG/NAME --local-dir ${dir} --repair`
  }
  if (r.files.length > 1 || bad[0]?.path !== resolve(r.target)) {
    return `pull ${bad.length === 1 ? 'it' : 'each'} again from where ${bad.length === 1 ? 'it' : 'they'} came: mtune pull URL -o PATH --sha256 HEX, with the HEX ${r.checksumList ? `from ${r.checksumList}` : 'its line above expects'}`
  }
  const expected = r.files[0]?.expected ?? 'HEX'
  return `pull it again from where it came: mtune pull URL -o ${shellWord(r.target)} --sha256 ${expected}`
}

/** Files of the revision that were never pulled here: up to four named, then a count. */
function notPulled(names: string[]): string {
  const shown = fewNames(names)
  return `${names.length} file${names.length === 1 ? '' : 's'} of the revision ${names.length === 1 ? 'was' : 'were'} not pulled here, so not checked: ${shown}`
}
