import {ExitCode, MtuneError, usageError} from '../errors.js'
import type {SourceRef} from '../sources/reference.js'
import {numberTyped, parseRate, parseSize} from '../units.js'
import {INSECURE_ELSEWHERE} from './flag-habits.js'
import {MIN_CHUNK_SIZE} from '../transfer/pull-types.js'

/**
 * Which of `mtune pull`'s flags go with which source, checked before anything is asked of a
 * server. A flag that does not apply is refused with a line saying what does, never ignored: a
 * pull that silently dropped --include or -o would fetch something else than asked, or elsewhere.
 */
export interface PullFlags {
  output?: string
  sha256?: string
  force?: boolean
  continue?: boolean
  mirror?: string[]
  auto?: boolean
  tune?: boolean
  budget?: number
  'public-mirrors'?: boolean
  include?: string[]
  exclude?: string[]
  'local-dir'?: string
  endpoint?: string[]
  verify?: boolean
  insecure?: boolean
  'chunk-size'?: string
  'limit-rate'?: string
}

/** What does for a model what a URL-only flag does for a file. */
function forModels(flag: 'output' | 'sha256' | 'force' | 'mirror', kind: Exclude<SourceRef['kind'], 'url'>): string {
  const ollama = kind === 'ollama'
  switch (flag) {
    case 'output':
      return ollama ? 'an Ollama model goes into OLLAMA_MODELS (set it to choose where)' : `${kind === 'hf' ? 'an' : 'a'} ${kind}:// model goes into its cache, or into a plain tree with --local-dir DIR`
    case 'sha256':
      return "a model's files are checked against the digests its hub publishes"
    case 'force':
      return "a model's files already there are kept only when they match its hub's digests; --verify re-hashes them and pulls again any that do not"
    case 'mirror':
      return ollama ? "an Ollama model's registry is part of its name (ollama://HOST/NAMESPACE/MODEL)" : 'another hub or mirror is --endpoint URL; with --auto, --mirror names candidates to measure'
  }
}

/** The flags that do not fit a pull of this kind of source: one line and exit 2 for the first. */
export function refuseMisplacedFlags(kind: SourceRef['kind'], flags: PullFlags): void {
  if (kind !== 'url') {
    if (flags.continue) throw usageError('bad-flag', `--continue applies to URLs; a ${kind} pull takes over by itself what its own client (or aria2c) left unfinished`)
    // --auto measures an hf:// or modelscope:// model's --mirror hubs; an Ollama model has one registry, in its name.
    for (const flag of ['output', 'sha256', 'force', ...(flags.auto && kind !== 'ollama' ? [] : (['mirror'] as const))] as const) {
      if (flags[flag] !== undefined && flags[flag] !== false) {
        throw new MtuneError('bad-flag', `--${flag} applies to URLs only; ${forModels(flag, kind)}`, ExitCode.usage)
      }
    }
  }
  if (kind === 'url' || kind === 'ollama') {
    // Silently ignored, they would pull something else than asked: all of a model, or elsewhere.
    for (const flag of ['include', 'exclude', 'local-dir', 'endpoint'] as const) {
      if (flags[flag] !== undefined) {
        throw usageError('bad-flag', `--${flag} applies to hf:// and modelscope:// sources${kind === 'ollama' ? `: an Ollama model is all of its blobs, in OLLAMA_MODELS${flag === 'endpoint' ? ' (another registry: ollama://HOST/NAMESPACE/MODEL)' : ''}` : ''}`)
      }
    }
  }
  if (flags.insecure && kind !== 'ollama') throw usageError('bad-flag', INSECURE_ELSEWHERE)
  if (kind === 'url' && flags.verify) throw usageError('bad-flag', '--verify re-hashes the files of a model source; a URL\'s file is checked against --sha256 (an existing one too)')
  if (!flags.auto) {
    if (flags.tune) throw new MtuneError('bad-flag', '--tune needs --auto', ExitCode.usage)
    // Ignored, they would say the pull measured what it did not.
    if (flags.budget !== undefined) throw usageError('bad-flag', '--budget is the time --auto measures for: give --auto too, or leave it out')
    if (flags['public-mirrors'] !== undefined) throw usageError('bad-flag', `--${flags['public-mirrors'] ? '' : 'no-'}public-mirrors says which candidates --auto measures: give --auto too, or leave it out`)
    if ((flags.endpoint?.length ?? 0) > 1) throw new MtuneError('bad-flag', 'several --endpoint values need --auto (which measures them); give one', ExitCode.usage)
  }
}

/** The flags that do not fit `pull -i FILE`, whose list gives the URLs (and their digests). */
export function refuseListFlags(file: string, source: string | undefined, flags: PullFlags): void {
  if (source !== undefined) throw usageError('bad-flag', `-i ${file} gives the URLs: put ${source} in it, or pull it alone without -i`)
  for (const flag of ['sha256', 'mirror', 'auto', 'tune', 'budget', 'public-mirrors', 'include', 'exclude', 'local-dir', 'endpoint', 'verify', 'insecure'] as const) {
    if (flags[flag] !== undefined && flags[flag] !== false) throw usageError('bad-flag', `--${flag} does not apply to -i: ${flag === 'sha256' ? 'give each URL its digest in the list (an indented checksum=sha-256=HEX line, or HEX  URL)' : 'a list holds plain URLs'}`)
  }
  // Which of a list's files to take as starts cannot be judged before each answers; one at a time it can.
  if (flags.continue) throw usageError('bad-flag', `--continue does not apply to -i: continue a file another tool cut short on its own (mtune pull URL -o FILE --continue); aria2c's (FILE.aria2 beside it) are taken over in a list too`)
}

/** -c above --max-connections: the engine took the larger as the ceiling, so --max-connections was ignored. */
export function refuseConnectionCounts(flags: {connections?: number; 'max-connections'?: number}): void {
  const {connections, 'max-connections': max} = flags
  if (connections !== undefined && max !== undefined && connections > max) {
    throw usageError('bad-flag', `--connections ${connections} is more than --max-connections ${max}: the pull starts with -c and grows up to --max-connections; give -c ${max} or less`)
  }
}

/** --chunk-size and --limit-rate, parsed and checked: the same for a single pull and a list (-i). */
export function sizesOf(flags: Pick<PullFlags, 'chunk-size' | 'limit-rate'>): {chunkSize?: number; limitRate?: number} {
  const chunkSize = flags['chunk-size'] ? parseSize(flags['chunk-size'], '--chunk-size') : undefined
  const limitRate = flags['limit-rate'] ? parseRate(flags['limit-rate'], '--limit-rate') : undefined
  if (chunkSize !== undefined && chunkSize < MIN_CHUNK_SIZE) {
    throw new MtuneError('bad-size', `--chunk-size ${flags['chunk-size']} is too small: use 64K or more`, ExitCode.usage)
  }
  if (limitRate === 0) throw new MtuneError('bad-size', '--limit-rate must be more than 0', ExitCode.usage)
  // Bytes per second without a unit, as curl and wget read it: `--limit-rate 5` is 5 B/s, a
  // 10 GB model in 63 years. Below 1 KiB/s it is a unit left out, not a cap anyone means.
  if (limitRate !== undefined && limitRate < 1024) {
    const n = numberTyped(flags['limit-rate']!)
    throw new MtuneError('bad-size', `--limit-rate ${flags['limit-rate']} is ${limitRate} bytes/s, too slow for any download: give a unit, e.g. ${n}M (MiB/s) or ${n}Mbit`, ExitCode.usage)
  }
  return {chunkSize, limitRate}
}
