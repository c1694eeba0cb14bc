import {existsSync, lstatSync} from 'node:fs'
import type {Plan} from '../sources/plan.js'
import {downloadMetadataPath} from '../sources/hf-local-dir.js'
import {partOf} from '../sources/held.js'
import {aria2Beside} from '../transfer/adopt.js'
import {interruptedAt, type Expectations, type Problem} from './expect.js'


/**
 * The files of the hub's listing that the disk lacks, sorted out before anything is hashed:
 * - a part file of mtune's own beside it (or huggingface_hub's `.incomplete`, which a pull takes
 *   over): a pull was interrupted. Said as such (not "missing"), and kept: `mtune pull` or
 *   --repair resumes it;
 * - nothing at all (no file, no link, no part): not pulled, when the user chose no files and
 *   something else of the model is here. `pull --include "*Q4_K_M*"` takes one quantisation of a
 *   repo that lists twenty; calling the other nineteen missing would send --repair after hundreds
 *   of GB nobody asked for. With --include, --exclude or a path, or with nothing of the model
 *   on disk, an absent file stays missing. So does one that a --local-dir tree's record
 *   (.cache/huggingface/download) says was fetched into it.
 */
export function sortOutAbsent(exp: Expectations, plan: Plan, chosen: boolean): {exp: Expectations; notPulled: string[]} {
  const byPath = new Map(plan.files.map((f) => [f.dest, f]))
  const interrupted: Problem[] = []
  const resumable = new Set<string>()
  const absent = new Set<string>()
  let here = 0
  for (const e of exp.files) {
    const f = byPath.get(e.path)
    if (existsSync(e.path)) here++
    else if (f && existsSync(partOf(f))) {
      interrupted.push(interruptedAt(e.name, partOf(f)))
      resumable.add(e.path)
    } else if (f?.adopt && existsSync(f.adopt.path)) {
      // huggingface_hub's download of it, cut: a pull takes it over (adopt.ts).
      interrupted.push(interruptedAt(e.name, f.adopt.path, "another client's"))
      resumable.add(e.path)
    } else if (e.link && lstatSync(e.link, {throwIfNoEntry: false})) here++
    // huggingface_hub's record in a --local-dir tree says it was fetched here: gone since, so missing.
    else if (f && plan.layout === 'directory' && existsSync(downloadMetadataPath(plan.root, f.name))) here++
    else absent.add(e.path)
  }
  const parts = new Set(interrupted.map((p) => p.path))
  const notPulled = !chosen && here + interrupted.length > 0 ? absent : new Set<string>()
  return {
    exp: {
      ...exp,
      files: exp.files.filter((e) => !notPulled.has(e.path) && !resumable.has(e.path)),
      // The disk's own scan may have seen the same part file: named once, by the file it belongs to.
      problems: [...exp.problems.filter((p) => !parts.has(p.path)), ...interrupted],
    },
    notPulled: exp.files.filter((e) => notPulled.has(e.path)).map((e) => e.name),
  }
}

/**
 * Files that are aria2c's partial downloads (FILE.aria2 beside them; hfd.sh's in a --local-dir
 * tree): cut, not corrupt, though as long as the file. Not hashed; said once, and kept: a pull
 * (or --repair) takes them over (adopt.ts).
 */
export function sortOutCut(exp: Expectations): Expectations {
  const cut = exp.files.filter((e) => aria2Beside(e.path))
  if (cut.length === 0) return exp
  return {...exp, files: exp.files.filter((e) => !cut.includes(e)), problems: [...exp.problems, ...cut.map((e) => interruptedAt(e.name, e.path, "aria2c's"))]}
}
