import {minimatch} from 'minimatch'
import {ggufVariant} from './weight-formats.js'

/**
 * Which files of a repo a pull (or a verify) is about: --include/--exclude globs, and a path in
 * the reference (hf://ORG/NAME/PATH, as huggingface_hub's HfFileSystem writes it).
 */
export interface Selection {
  include?: string[]
  exclude?: string[]
  /**
   * Files, folders (everything under them) or globs, relative to the repo's root: the one in the
   * reference, and those named after it (`mtune pull hf://ORG/NAME FILE...`, as `hf download`).
   */
  paths?: string[]
  /** One GGUF variant (hf://ORG/NAME:Q4_K_M): its file or shards, whatever the case of the tag. */
  quant?: string
}

/** The user chose files: what is absent from disk is then missing, not merely "not pulled". */
export const choosesFiles = (s: Selection): boolean => Boolean(s.include?.length || s.exclude?.length || s.paths?.length || s.quant)

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
export function underPath(name: string, path: string): boolean {
  if (name === path || name.startsWith(`${path}/`)) return true
  return /[*?[]/.test(path) && minimatch(name, path, {dot: true})
}

/** Under any of the paths; no paths: the whole repo. */
export const underPaths = (name: string, paths?: string[]): boolean => !paths?.length || paths.some((p) => underPath(name, p))

/** The reference's path and those named after the source, as one selection's paths. */
export const pathsOf = (ref: {path?: string}, files?: string[]): string[] => [...(ref.path ? [ref.path] : []), ...(files ?? [])]

/** One predicate for a resolver: both the globs and the path must let the name through. */
export const selector =
  (s: Selection) =>
  (name: string): boolean =>
    underPaths(name, s.paths) && ofVariant(name, s.quant) && selected(name, s.include, s.exclude)
