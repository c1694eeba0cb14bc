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
 * - `aria2`: aria2c (and scripts built on it, such as hfd.sh) writes the file itself, often
 *   allocated at full size, and records finished pieces in `FILE.aria2` (its control file).
 * The bytes are checked as any resumed ones are: a sample against the server (resume-check.ts),
 * and the whole file against its digest before it is put in place.
 */
export interface Leftover {
  path: string
  kind: 'appended' | 'ollama' | 'aria2'
}

/** aria2c's partial download at `path`: the file, with its control file beside it (a control file alone describes nothing left). */
export function aria2Beside(path: string): Leftover | undefined {
  return existsSync(`${path}.aria2`) && existsSync(path) ? {path, kind: 'aria2'} : undefined
}

/**
 * What another client left of the file at `path` for a pull to take over: aria2c's partial
 * download in its place; with `continuing` (--continue), the file itself as a start, as wget -c
 * and curl -C - take it; else the one its source names (`named`: huggingface_hub's, Ollama's).
 */
export function leftoverAt(path: string, named?: Leftover, continuing = false): Leftover | undefined {
  return aria2Beside(path) ?? (continuing && existsSync(path) ? {path, kind: 'appended'} : named)
}

/** What a leftover holds of a file, judged without moving anything. */
export interface Judged {
  ranges: RangeSet
  /** Why a file that is there is not taken over ("it ..."; the caller names the file). */
  why?: string
  /** The other client's records of it (Ollama's parts, aria2c's control file), which go once the file is taken over. */
  records?: string[]
  /** The file's size as the records give it (aria2c's). */
  size?: number
}

const NOTHING: Judged = {ranges: new RangeSet()}
/** Blocks a file may lack against its length and still be called whole (the last block, rounding). */
const SLACK = 4096 * 2

/**
 * Left alone: a file that is not plausibly part of this one (too long, records that do not tile
 * the file) and one whose bytes are not all there (holes where it claims bytes). Synchronous:
 * the first request's range is chosen from it before anything is opened. Without `size` (a URL
 * not yet asked), aria2c's is judged against the size its records give, and a start of the file
 * is taken as one.
 */
export function judgeLeftover(leftover: Leftover, size: number | undefined): Judged {
  const info = lstatSync(leftover.path, {throwIfNoEntry: false})
  if (!info?.isFile() || info.size === 0) return NOTHING
  const allocated = info.blocks * 512
  if (leftover.kind === 'aria2') return recorded(aria2Pieces(`${leftover.path}.aria2`, size), info.size, allocated)
  if (leftover.kind === 'appended') {
    // Without the file's size (a URL not yet asked), it cannot be told too long: the server's answer will.
    if (size !== undefined && info.size >= size) return {...NOTHING, why: `it is not shorter than the file (${info.size} of ${size} bytes), so not a partial download`}
    // Written out of order, by a parallel downloader: not a start to build on.
    if (allocated < info.size - SLACK) return {...NOTHING, why: 'it has holes (written out of order), so not a start to build on'}
    return {ranges: RangeSet.from([{start: 0, end: info.size}])}
  }
  if (size === undefined) return NOTHING
  return recorded(ollamaPieces(leftover.path, size), info.size, allocated)
}

/** What a client's records say is written, or why they cannot be gone by. */
type Records = {ranges: RangeSet; paths: string[]; size?: number} | {why: string}

/** Records held against the file they describe: a file must hold the bytes they claim. */
function recorded(records: Records, length: number, allocated: number): Judged {
  if ('why' in records) return {...NOTHING, why: records.why}
  const {ranges} = records
  // Nothing finished: nothing to keep, but the records still go with the file (adoptLeftover).
  const last = ranges.toArray().at(-1)
  if (!last) return records.paths.length ? {ranges, records: records.paths, size: records.size} : NOTHING
  if (last.end > length) return {...NOTHING, why: `it ends at ${length} bytes, before what its records claim (${last.end})`}
  if (allocated < ranges.total - SLACK) return {...NOTHING, why: `it holds ${allocated} bytes on disk, fewer than its records claim (${ranges.total})`}
  return {ranges, records: records.paths, size: records.size}
}

/** Ollama's: each part's [Offset, Offset + Completed), the parts tiling the file. */
function ollamaPieces(path: string, size: number): Records {
  const read = ollamaRecords(path)
  if ('why' in read) return read
  if (read.parts.length === 0) return {ranges: new RangeSet(), paths: []}
  const tiled = tiles(read.parts, size)
  if (tiled) return {why: `its parts ${tiled}, so they are not this file's download`}
  return {ranges: RangeSet.from(read.parts.map((p) => ({start: p.Offset, end: p.Offset + p.Completed}))), paths: read.paths}
}

/**
 * aria2c's control file (its manual's "Control File (*.aria2) Format", version 1, big-endian):
 * version, extension, info hash (none over HTTP), piece length, total length, upload length, and
 * a bitfield of the pieces finished, most significant bit first. Pieces in flight are left out:
 * only finished ones are gone by.
 */
export function aria2Pieces(control: string, size: number | undefined): Records {
  let b: Buffer
  try {
    b = readFileSync(control)
  } catch {
    return {why: `its control file ${control} cannot be read`}
  }
  const bad = {why: `its control file ${control} is not one aria2c writes`}
  if (b.length < 34) return bad
  const version = b.readUInt16BE(0)
  if (version !== 1) return {why: `its control file ${control} is of aria2c's version ${version} format, which mtune does not read`}
  const infoHash = b.readUInt32BE(6)
  if (infoHash !== 0) return {why: `its control file ${control} is a BitTorrent download's`}
  const pieceLength = b.readUInt32BE(10)
  const total = Number(b.readBigUInt64BE(14))
  const bitfieldLength = b.readUInt32BE(30)
  if (pieceLength === 0 || !Number.isSafeInteger(total) || b.length < 34 + bitfieldLength) return bad
  const pieces = Math.ceil(total / pieceLength)
  if (bitfieldLength !== Math.ceil(pieces / 8)) return bad
  if (size !== undefined && total !== size) return {why: `its control file is for a file of ${total} bytes, not this one's ${size}`}
  // Runs of finished pieces, gathered in one pass: a 500 GB file has half a million pieces.
  const runs: ByteRange[] = []
  for (let i = 0; i < pieces; i++) {
    if (!(b[34 + (i >> 3)]! & (0x80 >> (i & 7)))) continue
    const start = i * pieceLength
    const end = Math.min(total, start + pieceLength)
    const last = runs.at(-1)
    if (last?.end === start) last.end = end
    else runs.push({start, end})
  }
  return {ranges: RangeSet.from(runs), paths: [control], size: total}
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
  if (judged.why || (judged.ranges.total === 0 && !judged.records?.length)) return judged
  const holder = await openedElsewhere(leftover.path)
  if (holder) return {...NOTHING, why: `it is open in process ${holder}: that download is still running`}
  // The rename is the hand-over: should it fail, the other client's download is as it was.
  const moved = await rename(leftover.path, partPath).then(
    () => undefined,
    (error: NodeJS.ErrnoException) => error.code ?? 'error',
  )
  if (moved) return {...NOTHING, why: `it cannot be moved beside the file (${moved})`}
  // From here on the journal calls these bytes durable.
  const handle = await open(partPath, 'r+')
  try {
    await handle.datasync()
  } finally {
    await handle.close()
  }
  // The records go with the file they describe: left, they would have `ollama pull` take the
  // parts they call done as written into a new, empty file, and aria2c -c resume a file it no
  // longer has.
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
export function adoptedHole(dest: {partPath: string; journalPath: string}, adopt: (Leftover & {size?: number}) | undefined): ByteRange | undefined {
  if (!adopt || existsSync(dest.journalPath) || existsSync(dest.partPath)) return undefined
  const judged = judgeLeftover(adopt, adopt.size)
  // A URL's size is not known before the server is asked: aria2c's records give it; for a start
  // of the file (--continue), what follows it is asked for, and the server's answer bounds it.
  return judged.ranges.total > 0 ? judged.ranges.missing(adopt.size ?? judged.size ?? Number.MAX_SAFE_INTEGER)[0] : undefined
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
