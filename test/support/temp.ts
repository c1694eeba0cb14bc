import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

/**
 * A fresh directory under the system's temporary directory, removed when the test file's process
 * exits (node --test runs each file in its own). Tests used to leave theirs: about a gigabyte
 * of part files, caches and fixture trees in /tmp per run of the suite.
 */
const made: string[] = []
process.once('exit', () => {
  for (const dir of made) rmSync(dir, {recursive: true, force: true, maxRetries: 2})
})

export function tempDir(what: string): string {
  const dir = mkdtempSync(join(tmpdir(), `mtune-${what}-`))
  made.push(dir)
  return dir
}
