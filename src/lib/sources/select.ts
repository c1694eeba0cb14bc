import {minimatch} from 'minimatch'
import {ggufVariant} from './weight-formats.js'

/**
 * Which files of a repo a pull (or a verify) is about: --include/--exclude globs, and a path in
 * the reference (hf://ORG/NAME/PATH, as huggingface_hub's HfFileSystem writes it).
 */
export interface Selection {
  include?: string[]
  exclude?: string[]
  /** A file, a folder (everything under it) or a glob, relative to the repo's root. */
  path?: string
  /** One GGUF variant (hf://ORG/NAME:Q4_K_M): its file or shards, whatever the case of the tag. */
  quant?: string
}

/** The user chose files: what is absent from disk is then missing, not merely "not pulled". */
export const choosesFiles = (s: Selection): boolean => Boolean(s.include?.length || s.exclude?.length || s.path || s.quant)

/** A GGUF file of the variant QUANT (Q4_K_M, IQ2_XS, f16...), as llama.cpp's -hf ORG/NAME:QUANT picks it. */
export const ofVariant = (name: string, quant?: string): boolean =>
  !quant || (/\.gguf$/i.test(name) && !/(^|\/)mmproj/i.test(name) && ggufVariant(name)?.toUpperCase() === quant.toUpperCase())

/**
 * --include/--exclude globs. Like the official client's fnmatch, a pattern without a slash
 * matches the name in any folder.
 */
export function selected(name: string, include?: string[], exclude?: string[]): boolean {
  const opts = {dot: true, matchBase: true}
  if (include?.length && !include.some((p) => minimatch(name, p, opts))) return false
  if (exclude?.some((p) => minimatch(name, p, opts))) return false
  return true
}

/** The file itself, anything in the folder, or (with * ? [) what the glob matches from the root. */
export function underPath(name: string, path?: string): boolean {
  if (!path) return true
  if (name === path || name.startsWith(`${path}/`)) return true
  return /[*?[]/.test(path) && minimatch(name, path, {dot: true})
}

/** One predicate for a resolver: both the globs and the path must let the name through. */
export const selector =
  (s: Selection) =>
  (name: string): boolean =>
    underPath(name, s.path) && ofVariant(name, s.quant) && selected(name, s.include, s.exclude)
