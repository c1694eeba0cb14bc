import {existsSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {readText} from '../text-file.js'

/**
 * The checksum lists that mirrors and release pages publish beside their files, as
 * `sha256sum -c` reads them: found by these names in the file's own directory.
 */
export const CHECKSUM_LISTS = ['SHA256SUMS', 'SHA256SUMS.txt', 'sha256sums', 'sha256sums.txt', 'sha256sum.txt', 'checksums.sha256']

export interface ListedDigest {
  /** As the list names it, relative to the list's directory (a leading ./ dropped). */
  name: string
  sha256: string
}

/**
 * sha256sum's lines, GNU (`HEX  NAME`, `HEX *NAME`, and `\HEX ...` with \\ and \n escaped in the
 * name) and BSD (`SHA256 (NAME) = HEX`, from `sha256sum --tag`). Other lines (comments, other
 * algorithms) are skipped; a digest of another length is not a sha256.
 */
export function parseChecksumList(text: string): ListedDigest[] {
  const out: ListedDigest[] = []
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '')
    const gnu = /^(\\?)([0-9a-fA-F]{64}) [ *](.+)$/.exec(line)
    const bsd = /^SHA256 \((.+)\) = ([0-9a-fA-F]{64})$/.exec(line)
    if (!gnu && !bsd) continue
    const escaped = gnu?.[1] === '\\'
    let name = gnu ? gnu[3] : bsd![1]
    if (escaped) name = name.replace(/\\(\\|n)/g, (_, c: string) => (c === 'n' ? '\n' : '\\'))
    name = name.replace(/^(\.\/)+/, '')
    out.push({name, sha256: (gnu ? gnu[2] : bsd![2]).toLowerCase()})
  }
  return out
}

/** The first checksum list in `dir`, with what it lists, or undefined when there is none. */
export function checksumListIn(dir: string): {path: string; entries: ListedDigest[]} | undefined {
  for (const name of CHECKSUM_LISTS) {
    const path = join(dir, name)
    if (!existsSync(path) || !statSync(path).isFile()) continue
    return {path, entries: parseChecksumList(readText(path))}
  }
  return undefined
}
