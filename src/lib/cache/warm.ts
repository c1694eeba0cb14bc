import {createHash, type Hash} from 'node:crypto'
import type {Dispatcher} from 'undici'
import {ExitCode, MtuneError} from '../errors.js'
import {headersFor} from '../net/credentials.js'
import {parseContentRange} from '../net/http-range.js'
import {get, getRange, redact} from '../net/request.js'
import {TransferError} from '../net/retry-policy.js'
import type {PlannedFile} from '../sources/plan.js'
import {parseSize} from '../units.js'
import {SLICE} from './config.js'

/**
 * `mtune cache warm`: every byte of a model read once through the rack cache before the fleet
 * asks for it, so that the rollout's pulls are all hits and the first servers do not wait on
 * the internet. Nothing is written on this host. Each file is read in the cache's slices over
 * several connections (nginx fetches each missing slice upstream once, in parallel), hashed in
 * order through a bounded window, and held against the hub's digest: the cache then holds what
 * was published, or the command says it does not.
 */

/** nginx's slice size in the cache's configuration: one request, one slice, one HIT or MISS. */
export const WARM_CHUNK = parseSize(SLICE, 'slice')

export interface WarmedFile {
  name: string
  size: number
  /** Bytes of the slices the cache already held (X-Mtune-Cache: HIT): the rest it fetched upstream now. */
  cachedBytes: number
  /** true: the bytes match the hub's digest; false: they do not; null: there is none to check. */
  verified: boolean | null
  /** The digest the bytes have, when it is not the published one. */
  got?: string
}

/** The digest a file is checked against, and a hash that computes it. */
function digestOf(file: Pick<PlannedFile, 'sha256' | 'gitSha1'>, size: number): {expected: string; hash: Hash} | undefined {
  if (file.sha256) return {expected: file.sha256, hash: createHash('sha256')}
  if (file.gitSha1) return {expected: file.gitSha1, hash: createHash('sha1').update(`blob ${size}\0`)}
  return undefined
}

const isHit = (headers: Record<string, string | undefined>) => /^(HIT|UPDATING|REVALIDATED)$/i.test(headers['x-mtune-cache'] ?? '')

/** Up to three tries for one slice: a reset connection must not end a warm of 100 GB. */
async function readSlice(dispatcher: Dispatcher, url: string, headers: Record<string, string>, start: number, end: number, signal?: AbortSignal) {
  for (let attempt = 1; ; attempt++) {
    try {
      const {res, body, range} = await getRange(dispatcher, url, headers, start, end, signal)
      if (body) return {body, hit: isHit(res.headers)}
      throw new TransferError('fatal', `${redact(url)} answered ${res.status}${range ? ` with bytes ${range.start}-${range.end}` : ''} to bytes ${start}-${end - 1}`)
    } catch (error) {
      if (signal?.aborted || attempt >= 3 || (error instanceof TransferError && error.kind === 'fatal')) throw error
    }
  }
}

/**
 * One file through the cache: its first slice asked through the redirects (hub -> the cache's
 * CDN path), the rest straight at the URL that answered, `connections` at a time, in order into
 * the hash with at most twice as many slices held in memory.
 */
export async function warmFile(
  file: Pick<PlannedFile, 'name' | 'url' | 'size' | 'sha256' | 'gitSha1'>,
  options: {dispatcher: Dispatcher; headers: Record<string, string>; connections: number; signal?: AbortSignal; onBytes?(n: number): void},
): Promise<WarmedFile> {
  const {dispatcher, signal} = options
  // An empty file (a .gitattributes, an empty __init__.py) has no range to ask for, and nothing to cache.
  if (file.size === 0) {
    const empty = digestOf(file, 0)
    return {name: file.name, size: 0, cachedBytes: 0, verified: empty ? empty.hash.digest('hex') === empty.expected : null}
  }
  const first = await get(dispatcher, file.url, {...options.headers, range: `bytes=0-${WARM_CHUNK - 1}`, 'accept-encoding': 'identity'}, signal)
  if (first.status !== 200 && first.status !== 206) {
    await first.body.dump().catch(() => {})
    throw new MtuneError('warm-failed', `${file.name}: the cache answered ${first.status} for ${redact(file.url)}`, ExitCode.remote)
  }
  const range = parseContentRange(first.headers['content-range'])
  // The rest is asked by offset from this answer: one that is not the file's start, or names no size, cannot be built on.
  if (first.status === 206 && (range?.start !== 0 || range.total === undefined)) {
    await first.body.dump().catch(() => {})
    throw new MtuneError('warm-failed', `${file.name}: the cache answered bytes ${first.headers['content-range'] ?? '(no Content-Range)'} to bytes=0-${WARM_CHUNK - 1}`, ExitCode.remote)
  }
  const size = first.status === 206 ? range!.total! : Number(first.headers['content-length'] ?? file.size ?? 0)
  const digest = digestOf(file, size)
  const out: WarmedFile = {name: file.name, size, cachedBytes: 0, verified: null}
  const take = (body: Buffer, hit: boolean) => {
    digest?.hash.update(body)
    if (hit) out.cachedBytes += body.length
    options.onBytes?.(body.length)
  }
  if (first.status === 200) {
    // No ranges where it answered (a plain mirror behind an origin that ignores them): one stream.
    const hit = isHit(first.headers)
    for await (const chunk of first.body) take(chunk as Buffer, hit)
  } else {
    take(Buffer.from(await first.body.arrayBuffer()), isHit(first.headers))
    // Credentials went to the URL asked; the rest goes where the answer came from.
    const headers = headersFor(first.url, new URL(file.url).origin, options.headers)
    await readInOrder(Math.ceil(size / WARM_CHUNK), 1, options.connections, (i) => readSlice(dispatcher, first.url, headers, i * WARM_CHUNK, Math.min(size, (i + 1) * WARM_CHUNK), signal), (s) => take(s.body, s.hit))
  }
  if (digest) {
    const got = digest.hash.digest('hex')
    out.verified = got === digest.expected
    if (!out.verified) out.got = got
  }
  return out
}

/**
 * Slices `from`..`count`-1 read by `workers` at once and handed to `use` in order; a worker
 * waits while it is `2 x workers` slices ahead of the last one used, which bounds the memory.
 */
export async function readInOrder<T>(count: number, from: number, workers: number, read: (i: number) => Promise<T>, use: (t: T) => void): Promise<void> {
  const ready = new Map<number, T>()
  const window = Math.max(1, workers) * 2
  let used = from
  let next = from
  let wake: Array<() => void> = []
  let failed = false
  const worker = async () => {
    while (!failed) {
      const i = next++
      if (i >= count) return
      while (i - used >= window && !failed) await new Promise<void>((resolve) => wake.push(resolve))
      try {
        ready.set(i, await read(i))
      } catch (error) {
        failed = true
        for (const w of wake.splice(0)) w()
        throw error
      }
      while (ready.has(used)) {
        use(ready.get(used)!)
        ready.delete(used++)
      }
      const waiting = wake
      wake = []
      for (const w of waiting) w()
    }
  }
  await Promise.all(Array.from({length: Math.max(1, workers)}, worker))
}
