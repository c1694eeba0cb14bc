import {closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync} from 'node:fs'
import {dirname} from 'node:path'
import {RangeSet, type ByteRange} from './range-set.js'

/** What makes a partial download belong to one version of one file. */
export interface FileIdentity {
  url: string
  size?: number
  etag?: string
  lastModified?: string
  sha256?: string
  ranges: boolean
}

interface Header extends FileIdentity {
  v: 1
  bootId?: string
}

export interface Loaded {
  journal: Journal
  /** Ranges known to be on disk. */
  written: RangeSet
  /** Why an existing journal was thrown away, if it was. */
  discarded?: string
}

/**
 * The resume journal: a header line (the file's identity) and one line per range written.
 *
 * `W a b` is appended right after bytes a..b are written (page cache, no fsync), so SIGKILL
 * loses only the bytes in flight. Every checkpoint fdatasyncs the part file and rewrites the
 * journal with those ranges as `D a b` (durable). A `W` line is trusted only when the kernel has
 * not rebooted since it was written (same boot id): after a power loss, only `D` lines count.
 */
export class Journal {
  private fd: number
  private durable: RangeSet
  private readonly written: RangeSet

  private constructor(
    readonly path: string,
    private readonly header: Header,
    written: RangeSet,
    durable: RangeSet,
  ) {
    this.written = written
    this.durable = durable
    this.fd = -1
  }

  /**
   * What is on disk for this file, without writing anything yet: a pull sends its requests
   * first and calls `begin` while they are on their way, since the write waits on fsync.
   */
  static load(path: string, identity: FileIdentity, bootId: string | undefined): Loaded {
    const header: Header = {v: 1, ...identity, bootId}
    let discarded: string | undefined
    if (existsSync(path)) {
      const parsed = parse(readFileSync(path, 'utf8'))
      const why = parsed ? mismatch(parsed.header, identity) : 'the resume journal is unreadable'
      if (!why && parsed) {
        const sameBoot = Boolean(bootId && parsed.header.bootId === bootId)
        const written = sameBoot ? parsed.written : parsed.durable.clone()
        const journal = new Journal(path, header, written, parsed.durable.clone())
        return {journal, written: written.clone()}
      }
      discarded = why
    }
    return {journal: new Journal(path, header, new RangeSet(), new RangeSet()), written: new RangeSet(), discarded}
  }

  /**
   * The first range a resumed download still needs, read before the server is asked, so that
   * the first request asks for exactly that.
   */
  static firstMissing(path: string, bootId: string | undefined): ByteRange | undefined {
    if (!existsSync(path)) return undefined
    const parsed = parse(readFileSync(path, 'utf8'))
    if (!parsed || !parsed.header.ranges || parsed.header.size === undefined) return undefined
    const trusted = bootId && parsed.header.bootId === bootId ? parsed.written : parsed.durable
    return trusted.missing(parsed.header.size)[0]
  }

  /** Write the journal out (replacing one that was discarded); before any `recordWritten`. */
  begin(): void {
    if (this.fd < 0) this.rewrite()
  }

  /** Called right after bytes [start, end) reached the part file. */
  recordWritten(start: number, end: number): void {
    this.written.add(start, end)
    writeSync(this.fd, `W ${start} ${end}\n`)
  }

  /** Make what is written durable: sync the data first, then the journal that names it. */
  async checkpoint(datasync: () => Promise<void>): Promise<void> {
    const snapshot = this.written.clone()
    await datasync()
    this.durable = snapshot
    this.rewrite()
  }

  get writtenRanges(): RangeSet {
    return this.written
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd)
    this.fd = -1
  }

  remove(): void {
    this.close()
    rmSync(this.path, {force: true})
  }

  private rewrite(): void {
    const lines = [JSON.stringify(this.header)]
    for (const r of this.durable.toArray()) lines.push(`D ${r.start} ${r.end}`)
    for (const r of this.written.toArray()) lines.push(`W ${r.start} ${r.end}`)
    const tmp = `${this.path}.tmp`
    const fd = openSync(tmp, 'w')
    try {
      writeSync(fd, lines.join('\n') + '\n')
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, this.path)
    syncDirectory(dirname(this.path))
    if (this.fd >= 0) closeSync(this.fd)
    this.fd = openSync(this.path, 'a')
  }
}

function syncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, 'r')
    try {
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic.
  }
}

function parse(text: string): {header: Header; durable: RangeSet; written: RangeSet} | undefined {
  const lines = text.split('\n')
  let header: Header
  try {
    header = JSON.parse(lines[0]) as Header
  } catch {
    return undefined
  }
  if (header?.v !== 1) return undefined
  const durable = new RangeSet()
  const written = new RangeSet()
  for (const line of lines.slice(1)) {
    // A torn last line (crash mid-append) simply does not match.
    const m = /^([DW]) (\d+) (\d+)$/.exec(line)
    if (!m) continue
    const range: ByteRange = {start: Number(m[2]), end: Number(m[3])}
    if (header.size !== undefined && range.end > header.size) continue
    written.add(range.start, range.end)
    if (m[1] === 'D') durable.add(range.start, range.end)
  }
  return {header, durable, written}
}

function mismatch(saved: Header, now: FileIdentity): string | undefined {
  if (saved.size !== now.size) return `its size changed (${saved.size ?? 'unknown'} -> ${now.size ?? 'unknown'} bytes)`
  if (saved.etag && now.etag && saved.etag !== now.etag) return `its ETag changed (${saved.etag} -> ${now.etag})`
  if (saved.lastModified && now.lastModified && saved.lastModified !== now.lastModified) {
    return `its Last-Modified changed (${saved.lastModified} -> ${now.lastModified})`
  }
  if (saved.sha256 && now.sha256 && saved.sha256 !== now.sha256) return 'a different sha256 is expected now'
  if (!now.ranges) return 'the server does not support ranges, so a partial file cannot be continued'
  return undefined
}

export function currentBootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined
  } catch {
    return undefined
  }
}
