import type {Leftover} from '../transfer/adopt.js'
import type {Elsewhere} from '../transfer/pull-types.js'

/**
 * Big files of a plan pulled at once (run-plan.ts; small ones twice as many, file-slots.ts): the
 * pull command also sizes its fetch threads by it (thread-count.ts).
 */
export const PARALLEL_FILES = 4

/** One file of a model: where it comes from, how it is verified, where it goes. */
export interface PlannedFile {
  /** The path inside the repository, as shown to the user. */
  name: string
  /** What to GET (the hub redirects large files to a CDN). */
  url: string
  size?: number
  sha256?: string
  /** Git blob sha1, for small Hugging Face files that have no sha256. */
  gitSha1?: string
  /** The final path, written only once the file is verified. */
  dest: string
  /** Where partial data lives, when not beside `dest`. */
  partPath?: string
  /** Already in place (content-addressed and of the right size): skipped. */
  present: boolean
  /**
   * This file's own headers, in place of the plan's: a list of URLs (`pull -i`) mixes hosts, and
   * only a Hub file URL among them gets the Hub token. Sent to the file's URL's origin only.
   */
  headers?: Record<string, string>
  /**
   * Where the ecosystem's own client leaves this file half downloaded (huggingface_hub's
   * `.incomplete`, Ollama's `-partial`): taken over by the pull when mtune has none of its own.
   */
  adopt?: Leftover
}

/** What a source reference resolved to: the files, and how to finish the layout after them. */
export interface Plan {
  source: string
  /** e.g. "commit 1a2b3c4" or "manifest sha256:..." */
  version?: string
  /** Where the files go: a cache, a store or a plain directory. */
  root: string
  layout: 'hf-cache' | 'ollama' | 'modelscope-cache' | 'directory'
  files: PlannedFile[]
  /** Sent to the source's own host only. */
  headers: Record<string, string>
  /**
   * Links, refs, manifests: written after every file is verified and in place. Given the files
   * pulled, which a repair may have narrowed to those the user has (verify's "not pulled").
   */
  finish(files: PlannedFile[]): Promise<void>
  notes: string[]
  /** How to put the files elsewhere, where the layout's own setting does not (a list's -o DIR). */
  elsewhere?: Elsewhere
  /**
   * Why none of its files can be fetched (a plan read from the cache alone, the Hub not to be
   * asked or not answering): a file found bad then stops the pull with this, not with a request.
   */
  cannotFetch?: string
}

export function planTotals(plan: Plan): {files: number; bytes: number; presentFiles: number; presentBytes: number} {
  let bytes = 0
  let presentBytes = 0
  let presentFiles = 0
  for (const f of plan.files) {
    bytes += f.size ?? 0
    if (f.present) {
      presentFiles++
      presentBytes += f.size ?? 0
    }
  }
  return {files: plan.files.length, bytes, presentFiles, presentBytes}
}
