import {formatBytes} from '../units.js'

/**
 * What a whole-repo pull is about to fetch that its user most likely does not want, said before
 * it starts (pure: from the names and sizes of the files to pull). Two cases cost the most:
 * - a GGUF repo holds every quantisation of one model (20-30 files, hundreds of GB), and a
 *   runtime loads one of them;
 * - a repo with safetensors also holds the same weights in other formats (PyTorch .bin, Meta's
 *   original/ checkpoint, TensorFlow, Flax, ONNX), which transformers and vLLM skip when
 *   safetensors are there.
 * Notes only: huggingface_hub pulls them all too, and some users want exactly that.
 */

/** Other formats are named only when they add this much: below it, the note is noise. */
const WORTH_SAYING = 1024 ** 3

interface Sized {
  name: string
  size?: number
}

const bytes = (files: Sized[]) => files.reduce((n, f) => n + (f.size ?? 0), 0)

/** A quantisation's tag in a GGUF name: Q4_K_M, IQ2_XS, Q8_0, F16, BF16... */
const QUANT = /(?:^|[-_.])(I?Q\d(?:_[A-Z0-9]+)*|B?F16|F32)(?=[-_.]|$)/i

const unsharded = (name: string) => name.replace(/-\d{5}-of-\d{5}\.gguf$/i, '.gguf')

/**
 * The variant a GGUF file belongs to: the folder that names its quantisation (a sharded variant's
 * Q4_K_M/), else its name without the shard suffix. A repo that keeps every variant in one gguf/
 * folder names them in the files, so such a folder is not one variant.
 */
function variantOf(name: string): string {
  const parts = name.split('/')
  const folder = parts.slice(0, -1).findIndex((p) => QUANT.test(p))
  return folder >= 0 ? parts.slice(0, folder + 1).join('/') : unsharded(name)
}

/** A GGUF file's quantisation tag (Q4_K_M, IQ2_XS, f16...), from its variant's folder or its name. */
export const ggufVariant = (name: string): string | undefined =>
  variantOf(name)
    .split('/')
    .reverse()
    .map((part) => QUANT.exec(part)?.[1])
    .find(Boolean)

/** hf://ORG/NAME@REV as the variant's own reference, hf://ORG/NAME:TAG[@REV]; other sources take the glob. */
function variantReference(source: string | undefined, tag: string): string {
  const glob = `--include '*${tag}*'`
  if (!source?.startsWith('hf://')) return glob
  const [repo, revision] = source.split('@')
  return `${repo}:${tag}${revision && revision !== 'main' ? `@${revision}` : ''} (or ${glob})`
}

/** A folder's or repo's GGUF files by variant (its shards together), and the projectors apart. */
function ggufVariants(files: Sized[]): {variants: Map<string, Sized[]>; projector: Sized[]} {
  const gguf = files.filter((f) => /\.gguf$/i.test(f.name))
  // A vision model's projector (mmproj-*.gguf) goes with whichever variant is chosen.
  const projector = gguf.filter((f) => /(^|\/)mmproj/i.test(f.name))
  const variants = new Map<string, Sized[]>()
  for (const f of gguf) if (!projector.includes(f)) variants.set(variantOf(f.name), [...(variants.get(variantOf(f.name)) ?? []), f])
  return {variants, projector}
}

function ggufNote(files: Sized[], source?: string): string | undefined {
  const {variants} = ggufVariants(files)
  if (variants.size < 2) return undefined
  const weights = [...variants.values()].flat()
  const listed = [...variants].map(([key, parts]) => ({tag: ggufVariant(parts[0].name) ?? key, size: bytes(parts)})).sort((a, b) => a.size - b.size)
  const pick = listed.find((v) => /^Q4_K_M$/i.test(v.tag)) ?? listed[Math.floor(listed.length / 2)]
  const shown = listed.length > 8 ? [...listed.slice(0, 4), undefined, ...listed.slice(-3)] : listed
  const list = shown.map((v) => (v ? `${v.tag} ${formatBytes(v.size)}` : '...')).join(', ')
  return `this repo holds ${listed.length} GGUF variants (${formatBytes(bytes(weights))} in all) and a runtime loads one: ${variantReference(source, pick.tag)} takes ${pick.tag} alone (${list})`
}

const OTHER_FORMATS: Array<{what: string; match: (name: string) => boolean; exclude: string}> = [
  {what: 'PyTorch .bin', match: (n) => /(^|\/)pytorch_model[^/]*\.bin(\.index\.json)?$/.test(n), exclude: 'pytorch_model*'},
  {what: "Meta's original/ checkpoint", match: (n) => n.startsWith('original/'), exclude: 'original/*'},
  {what: 'TensorFlow .h5', match: (n) => /\.h5$/.test(n), exclude: '*.h5'},
  {what: 'Flax .msgpack', match: (n) => /\.msgpack$/.test(n), exclude: '*.msgpack'},
  {what: 'ONNX', match: (n) => n.startsWith('onnx/'), exclude: 'onnx/*'},
]

function formatsNote(files: Sized[]): string | undefined {
  const safetensors = files.filter((f) => /\.safetensors$/.test(f.name))
  if (safetensors.length === 0) return undefined
  const found = OTHER_FORMATS.map((o) => ({...o, size: bytes(files.filter((f) => o.match(f.name)))})).filter((o) => o.size > 0)
  const extra = found.reduce((n, o) => n + o.size, 0)
  if (extra < WORTH_SAYING) return undefined
  const kinds = found.map((o) => `${o.what} (${formatBytes(o.size)})`).join(', ')
  const flags = found.map((o) => `--exclude '${o.exclude}'`).join(' ')
  return `besides its safetensors (${formatBytes(bytes(safetensors))}) this repo holds the weights again as ${kinds}, which transformers and vLLM do not load when safetensors are there: ${flags} saves ${formatBytes(extra)}`
}

/**
 * Notes for a whole-repo pull: the files it will fetch that most users leave out, and the flags
 * (or, for hf://, the reference) that do. `source`: the plan's, hf://ORG/NAME@REV.
 */
export function weightNotes(toPull: Sized[], source?: string): string[] {
  return [ggufNote(toPull, source), formatsNote(toPull)].filter((n): n is string => n !== undefined)
}

/**
 * What a runtime loads from a folder or repo of weights: its safetensors (other formats beside
 * them are skipped, as transformers and vLLM skip them), else one GGUF variant (the largest,
 * named in `note`, when there are several) with its projector, else PyTorch checkpoints, else
 * every file. `source` (a repo's, hf://ORG/NAME@REV) words the note for a pull rather than a folder.
 */
export function loadedWeights(files: Sized[], source?: string): {bytes: number; note?: string} {
  const safetensors = files.filter((f) => /\.safetensors$/i.test(f.name))
  if (safetensors.length) return {bytes: bytes(safetensors)}
  const {variants, projector} = ggufVariants(files)
  if (variants.size || projector.length) {
    const largest = [...variants.values()].sort((a, b) => bytes(b) - bytes(a))[0] ?? []
    const tag = ggufVariant(largest[0]!.name) ?? largest[0]!.name
    const choose = source ? `name the one to load, as ${variantReference(source, 'QUANT')}` : 'give the one to load as --model PATH'
    const note = variants.size > 1 ? `${variants.size} GGUF variants here and a runtime loads one: the largest (${tag}, ${formatBytes(bytes(largest))}) is assumed for RAM and VRAM; ${choose}` : undefined
    return {bytes: bytes(largest) + bytes(projector), ...(note ? {note} : {})}
  }
  const torch = files.filter((f) => /\.(bin|pt|pth)$/i.test(f.name))
  return {bytes: bytes(torch.length ? torch : files)}
}
