import {errorMessage} from '../errors.js'
import {createDispatcher} from '../net/dispatcher.js'
import {probe} from '../net/probe.js'
import {planTotals} from '../sources/plan.js'
import {planStillToWrite} from '../sources/held.js'
import {hasScheme, parseSource} from '../sources/reference.js'
import {resolveThroughCache} from '../sources/through-cache.js'
import {parseCacheUrl} from '../sources/cache-endpoints.js'
import {choosesFiles, pathsOf} from '../sources/select.js'
import {hubFileHeaders} from '../sources/hub-files.js'
import {loadedWeights, weightNotes} from '../sources/weight-formats.js'
import {filesUnder, statOrNone} from '../fs-dirs.js'
import {dirname, relative, resolve} from 'node:path'

export interface ModelSize {
  size?: number
  /** What a runtime loads of it (loadedWeights), for RAM and VRAM: a repo's safetensors, not its other formats too. */
  loads?: number
  /** Bytes not yet on disk (a partly pulled model needs less space). */
  missing?: number
  /** Where `mtune pull` would write it. */
  path?: string
  /** Why the size is unknown. */
  note?: string
  /** What most users leave out of this repo, and how (a GGUF repo's variants): the size may be far more than needed. */
  advice?: string[]
}

/**
 * A model already on disk (a file, or a folder copied or pulled before): what a runtime loads of
 * it, for the memory and GPU checks; nothing left to write. Undefined when there is no such path.
 */
function onDisk(path: string): ModelSize | undefined {
  const info = statOrNone(path)
  if (!info) return undefined
  if (!info.isDirectory()) return {size: info.size, loads: info.size, missing: 0, path: dirname(resolve(path))}
  const files = filesUnder(resolve(path)).flatMap((p) => {
    const size = statOrNone(p)?.size
    return size === undefined ? [] : [{name: relative(resolve(path), p), size}]
  })
  const loaded = loadedWeights(files)
  return {size: loaded.bytes, loads: loaded.bytes, missing: 0, path: resolve(path), ...(loaded.note ? {advice: [loaded.note]} : {})}
}

/** MTUNE_CACHE as a pull reads it; one that is no URL is left out here (doctor env says what is wrong with it). */
function envCache(): string | undefined {
  try {
    return process.env.MTUNE_CACHE?.trim() ? parseCacheUrl(process.env.MTUNE_CACHE) : undefined
  } catch {
    return undefined
  }
}

/** The total size of a URL or model source, asked of the network; unknown (with the reason) when it cannot be. */
export async function modelSize(source: string, options: {endpoint?: string; timeoutMs?: number; insecure?: boolean} = {}): Promise<ModelSize> {
  const local = hasScheme(source) ? undefined : onDisk(source)
  if (local) return local
  const ref = parseSource(source, {insecure: options.insecure})
  const timeoutMs = options.timeoutMs ?? 10_000
  // The deadline governs; the stall timeout only backs it up, so the reason given is the deadline's.
  const dispatcher = createDispatcher({stallTimeoutMs: timeoutMs + 5_000})
  const signal = AbortSignal.timeout(timeoutMs)
  try {
    if (ref.kind === 'url') {
      // A Hub file URL with the Hub token, as a pull of it sends (hub-files.ts).
      const p = await probe(dispatcher, ref.url, hubFileHeaders(ref.url) ?? {}, signal, 0, 1)
      await p.response?.body.dump().catch(() => {})
      return p.file.size === undefined ? {note: 'the server does not say the size'} : {size: p.file.size, missing: p.file.size}
    }
    // Through the rack's cache where MTUNE_CACHE names one, as a pull asks: a server may reach the hub only through it.
    const plan = await resolveThroughCache(ref, {endpoint: options.endpoint}, envCache(), {dispatcher, signal, events: {}})
    const t = planTotals(plan)
    const advice = ref.kind !== 'ollama' && !choosesFiles({paths: pathsOf(ref), quant: ref.kind === 'hf' ? ref.quant : undefined}) ? weightNotes(plan.files.filter((f) => !f.present), plan.source) : []
    // Memory and VRAM hold what a runtime loads, not every format and variant a repo publishes.
    const loaded = ref.kind === 'ollama' ? {bytes: t.bytes} : loadedWeights(plan.files, plan.source)
    if (loaded.note) advice.push(loaded.note)
    // What a pull would still write: part files of an interrupted pull, and another client's it takes over, count as there.
    return {size: t.bytes, loads: loaded.bytes, missing: planStillToWrite(plan) ?? t.bytes - t.presentBytes, path: plan.root, ...(advice.length ? {advice} : {})}
  } catch (error) {
    // The deadline's own error says only "The operation was aborted".
    const why = signal.aborted ? `no answer within ${timeoutMs / 1000} s` : errorMessage(error)
    return {note: `size unknown (${why})`}
  } finally {
    await dispatcher.destroy().catch(() => {})
  }
}
