import {existsSync, readFileSync, statSync} from 'node:fs'
import {filesUnder} from '../fs-dirs.js'
import {basename, dirname, join, relative} from 'node:path'
import {safeJoin} from '../sources/safe-names.js'
import type {Expected, Expectations, Problem} from './expect.js'
import {headerSize, weightFormat} from './weight-headers.js'
import {fewNames} from '../units.js'

/**
 * Weights files with no digest anywhere, checked against the sizes their own headers give:
 * complete or cut short, not bytes right or wrong. Said as such in a note.
 */

export const noDigest = (what: string) => `no digest for ${what}: checked against what its own header says (a size; a zip's end record), not the bytes themselves (give --sha256 HEX, or put FILE.sha256 or a SHA256SUMS beside them)`

/** One file: what its header says it must be, or undefined when it is of neither format. */
function fileByHeader(path: string, name: string): {file?: Expected; problem?: Problem} | undefined {
  const header = headerSize(path)
  if (!header) return undefined
  if ('problem' in header) return {problem: {name, path, kind: header.truncated ? 'truncated' : 'corrupt', detail: header.problem}}
  const disk = statSync(path).size
  // GGUF writers pad after the last tensor: at least the header's size, so longer is fine.
  return {file: {name, path, size: header.exact || disk < header.size ? header.size : disk}}
}

export function byHeader(path: string): Expectations | undefined {
  const name = basename(path)
  const one = fileByHeader(path, name)
  if (!one) return undefined
  const parts = missingParts(path)
  return {kind: 'file', against: 'header', root: dirname(path), files: one.file ? [one.file] : [], problems: one.problem ? [one.problem] : [], notes: [noDigest(name), ...(parts ? [parts] : [])]}
}

/**
 * One part of a split GGUF named alone (model-00001-of-00003.gguf): said when other parts are not
 * beside it, since llama.cpp loads none of them without all. A note, not a failure: the file asked
 * about is checked as that file; its folder, checked, counts them as missing.
 */
function missingParts(path: string): string | undefined {
  const split = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i.exec(basename(path))
  const count = Number(split?.[3])
  if (!split || !(count > 1 && count <= 999)) return undefined
  const absent: number[] = []
  for (let i = 1; i <= count; i++) {
    const part = `${split[1]}-${String(i).padStart(5, '0')}-of-${split[3]}.gguf`
    if (!existsSync(join(dirname(path), part))) absent.push(i)
  }
  if (!absent.length) return undefined
  return `${basename(path)} is one of ${count} parts, and ${absent.length === 1 ? `part ${absent[0]} is` : `parts ${fewNames(absent.map(String), 6)} are`} not beside it: a runtime loads none without all (mtune verify ${dirname(path)} checks the folder)`
}

/**
 * A model folder without a checksum list (a --local-dir tree, a copy): every safetensors and GGUF
 * file against its header, and the shards the model says it has (model.safetensors.index.json's
 * weight map, a GGUF split's -00001-of-00004) present. Undefined when it holds no weights.
 */
export function weightTree(dir: string): Expectations | undefined {
  const all = filesUnder(dir)
  const files: Expected[] = []
  const problems: Problem[] = []
  // A file of a weights format whose header says nothing (a pickled .bin) counts with the others.
  const weights = all.filter((path) => {
    const one = weightFormat(path) ? fileByHeader(path, relative(dir, path)) : undefined
    if (one?.file) files.push(one.file)
    if (one?.problem) problems.push(one.problem)
    return one !== undefined
  })
  if (!weights.length) return undefined
  const named = new Set(weights.map((p) => relative(dir, p)))
  const notes: string[] = []
  for (const shard of shardsNamed(dir, all, notes)) {
    if (named.has(shard)) continue
    named.add(shard)
    files.push({name: shard, path: safeJoin(dir, shard)})
  }
  const others = all.length - weights.length
  notes.unshift(noDigest('these weights'))
  if (others) notes.push(`${others} other file${others === 1 ? '' : 's'} (configs, tokenizers) not checked: nothing says what they must be`)
  return {kind: 'file', against: 'header', root: dir, files, problems, notes}
}

/** The shards an index or a split's names say must be there, relative to `dir`. */
function shardsNamed(dir: string, all: string[], notes: string[]): string[] {
  const out: string[] = []
  for (const path of all.filter((p) => /\.safetensors\.index\.json$/i.test(p))) {
    try {
      const map = (JSON.parse(readFileSync(path, 'utf8')) as {weight_map?: Record<string, string>}).weight_map ?? {}
      for (const shard of new Set(Object.values(map))) {
        const name = relative(dir, join(dirname(path), String(shard)))
        if (!name.startsWith('..')) out.push(name)
      }
    } catch {
      notes.push(`${relative(dir, path)} is not valid JSON: the shards it names are not known`)
    }
  }
  for (const path of all) {
    const split = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i.exec(relative(dir, path))
    if (!split) continue
    const count = Number(split[3])
    for (let i = 1; i <= count && count <= 999; i++) out.push(`${split[1]}-${String(i).padStart(5, '0')}-of-${split[3]}.gguf`)
  }
  return out
}
