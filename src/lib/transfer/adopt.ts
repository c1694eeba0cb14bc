import {existsSync, lstatSync, readdirSync, readFileSync} from 'node:fs'
import {open, readdir, readlink, realpath, rename, rm} from 'node:fs/promises'
import {basename, dirname, join, resolve} from 'node:path'
import {fsyncDirectory} from '../fs-atomic.js'
import {RangeSet, type ByteRange} from './range-set.js'

/**
 * Another client's partial download of the same file, taken over by a pull that has none of its
 * own: a user whose `hf download` or `ollama pull` died at 180 GB of 200 and who runs mtune
 * instead keeps the 180 GB. Two kinds:
 * - `appended`: huggingface_hub appends to `blobs/ETAG.incomplete`
 *   (`.cache/huggingface/download/PATH.ETAG.incomplete` in a local dir) in order, so its bytes
 *   are the file's first ones;
 * - `ollama`: Ollama writes `blobs/sha256-HEX-partial` at the full size, sparse, in parts, and
 *   records each part's progress in `sha256-HEX-partial-N` ({"N","Offset","Size","Completed"}):
 *   bytes [Offset, Offset + Completed) of each part are written. It records a part's progress
 *   when a request for it ends (cut ones included), so what it records is never ahead of the file.
 * The bytes are checked as any resumed ones are: a sample against the server (resume-check.ts),
 * and the whole file against its digest before it is put in place.
 */
export interface Leftover {
  path: string
  kind: 'appended' | 'ollama'
}

/** What a leftover holds of a file, judged without moving anything. */
export interface Judged {
  ranges: RangeSet
  /** Why a file that is there is not taken over. */
  why?: string
  /** Ollama's part records, which go once the file is taken over. */
  records?: string[]
}

const NOTHING: Judged = {ranges: new RangeSet()}
/** Blocks a file may lack against its length and still be called whole (the last block, rounding). */
const SLACK = 4096 * 2

/**
 * Left alone: a file that is not plausibly part of this one (too long, records that do not tile
 * the file) and one whose bytes are not all there (holes where it claims bytes). Synchronous:
 * the first request's range is chosen from it before anything is opened.
 */
export function judgeLeftover(leftover: Leftover, size: number): Judged {
  const info = lstatSync(leftover.path, {throwIfNoEntry: false})
  if (!info?.isFile() || info.size === 0) return NOTHING
  const allocated = info.blocks * 512
  if (leftover.kind === 'appended') {
    if (info.size >= size) return {...NOTHING, why: `${leftover.path} is not shorter than the file (${info.size} of ${size} bytes): not a partial download`}
    // Written out of order, by a parallel downloader: not a start to build on.
    if (allocated < info.size - SLACK) return {...NOTHING, why: `${leftover.path} has holes (written out of order): not a start to build on`}
    return {ranges: RangeSet.from([{start: 0, end: info.size}])}
  }
  const read = ollamaRecords(leftover.path)
  if ('why' in read) return {...NOTHING, why: `${leftover.path}: ${read.why}: not taken over`}
  if (read.parts.length === 0) return NOTHING
  const tiled = tiles(read.parts, size)
  if (tiled) return {...NOTHING, why: `${leftover.path}: its parts ${tiled}: not this file's download`}
  const ranges = RangeSet.from(read.parts.map((p) => ({start: p.Offset, end: p.Offset + p.Completed})))
  const last = ranges.toArray().at(-1)
  if (last && last.end > info.size) return {...NOTHING, why: `${leftover.path} ends at ${info.size} bytes, before what its parts record (${last.end}): not taken over`}
  if (allocated < ranges.total - SLACK) return {...NOTHING, why: `${leftover.path} holds ${allocated} bytes on disk, fewer than its parts record (${ranges.total}): not taken over`}
  return {ranges, records: read.paths}
}

interface OllamaPart {
  N: number
  Offset: number
  Size: number
  Completed: number
}

/** Ollama's part records beside its partial file, read and checked for shape. */
function ollamaRecords(path: string): {parts: OllamaPart[]; paths: string[]} | {why: string} {
  const prefix = `${basename(path)}-`
  const names = (() => {
    try {
      return readdirSync(dirname(path)).filter((n) => n.startsWith(prefix) && /^\d+$/.test(n.slice(prefix.length)))
    } catch {
      return []
    }
  })()
  const parts: OllamaPart[] = []
  for (const name of names) {
    let part: Partial<OllamaPart>
    try {
      part = JSON.parse(readFileSync(join(dirname(path), name), 'utf8'))
    } catch {
      return {why: `its part record ${name} cannot be read`}
    }
    const whole = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0
    if (!whole(part.Offset) || !whole(part.Size) || !whole(part.Completed) || part.Completed > part.Size) return {why: `its part record ${name} is not one Ollama writes`}
    parts.push(part as OllamaPart)
  }
  return {parts, paths: names.map((n) => join(dirname(path), n))}
}

/** How parts fail to tile [0, size) one after another, or undefined when they do. */
function tiles(parts: OllamaPart[], size: number): string | undefined {
  let at = 0
  for (const p of [...parts].sort((a, b) => a.Offset - b.Offset)) {
    if (p.Offset !== at) return `leave a gap or overlap at byte ${at}`
    at += p.Size
  }
  return at === size ? undefined : `add up to ${at} bytes, not the file's ${size}`
}

/**
 * Moves the leftover in as `partPath` when it is judged part of a file of `size` bytes, flushed,
 * and says which of its bytes are there. Also left alone: a file another process still has open
 * (that client is still downloading it).
 */
export async function adoptLeftover(leftover: Leftover, partPath: string, size: number): Promise<Judged> {
  const judged = judgeLeftover(leftover, size)
  if (judged.why || judged.ranges.total === 0) return judged
  const holder = await openedElsewhere(leftover.path)
  if (holder) return {...NOTHING, why: `${leftover.path} is open in process ${holder}: that download is still running`}
  // The rename is the hand-over: should it fail, the other client's download is as it was.
  const moved = await rename(leftover.path, partPath).then(
    () => undefined,
    (error: NodeJS.ErrnoException) => error.code ?? 'error',
  )
  if (moved) return {...NOTHING, why: `${leftover.path} cannot be moved beside the file (${moved})`}
  // From here on the journal calls these bytes durable.
  const handle = await open(partPath, 'r+')
  try {
    await handle.datasync()
  } finally {
    await handle.close()
  }
  // Ollama's records go with the file they describe: left, they would have `ollama pull` take
  // the parts they call done as written into a new, empty file.
  if (judged.records?.length) {
    await Promise.all(judged.records.map((r) => rm(r, {force: true})))
    await fsyncDirectory(dirname(leftover.path)).catch(() => {})
  }
  return judged
}

/**
 * Where the first request should start when `adopt` will be taken over (no partial download of
 * mtune's own is there): at its first hole, as a resumed pull's first request does.
 */
export function adoptedHole(dest: {partPath: string; journalPath: string}, adopt: (Leftover & {size: number}) | undefined): ByteRange | undefined {
  if (!adopt || existsSync(dest.journalPath) || existsSync(dest.partPath)) return undefined
  const judged = judgeLeftover(adopt, adopt.size)
  return judged.ranges.total > 0 ? judged.ranges.missing(adopt.size)[0] : undefined
}

/** A process other than this one with `path` open (Linux's /proc/PID/fd links), or undefined; processes this user cannot see are skipped. */
export async function openedElsewhere(path: string, proc = '/proc'): Promise<number | undefined> {
  // The links name the file's real, absolute path; HF_HOME may be relative or go through a link.
  const target = await realpath(path).catch(() => resolve(path))
  const pids = (await readdir(proc).catch(() => [] as string[])).filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
  for (const pid of pids) {
    const fds = await readdir(join(proc, pid, 'fd')).catch(() => [] as string[])
    for (const fd of fds) if ((await readlink(join(proc, pid, 'fd', fd)).catch(() => undefined)) === target) return Number(pid)
  }
  return undefined
}
