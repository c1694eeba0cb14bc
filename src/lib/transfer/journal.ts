import {existsSync, readFileSync} from 'node:fs'
import {open, rename, rm, type FileHandle} from 'node:fs/promises'
import {fsyncDirectory} from '../fs-atomic.js'
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
  /** The server's validators take turns (backend-copies.ts): none are kept, and the next run ignores them too. */
  validatorsTakeTurns?: true
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

/** The file operations the journal makes, all asynchronous (libuv's thread pool); tests slow them down. */
export interface JournalIo {
  open(path: string, flags: string): Promise<Pick<FileHandle, 'write' | 'sync' | 'close'>>
  rename(from: string, to: string): Promise<void>
  rm(path: string): Promise<void>
  syncDirectory(dir: string): Promise<void>
}

const defaultIo: JournalIo = {
  open: (path, flags) => open(path, flags),
  rename,
  rm: (path) => rm(path, {force: true}),
  syncDirectory: fsyncDirectory,
}

/**
 * The resume journal: a header line (the file's identity) and one line per range written.
 *
 * `W a b` is appended right after bytes a..b are written (page cache, no fsync), so SIGKILL
 * loses only the bytes in flight. Every checkpoint fdatasyncs the part file and rewrites the
 * journal with those ranges as `D a b` (durable). A `W` line is trusted only when the kernel has
 * not rebooted since it was written (same boot id): after a power loss, only `D` lines count.
 *
 * Nothing here blocks the event loop: appends and rewrites are asynchronous and run one after
 * the other on one queue (the journal's only writer), so a slow disk delays the journal, never
 * the connections. Appends waiting while one is in flight go out together in one write. A `W`
 * line is still only ever recorded after its bytes were written, and a `D` line only after
 * their datasync; an append that fails is reported by the next recordWritten or checkpoint.
 */
export class Journal {
  private handle?: Awaited<ReturnType<JournalIo['open']>>
  private durable: RangeSet
  private readonly written: RangeSet
  /** Lines waiting for the queue's next append. */
  private pending: string[] = []
  private appendQueued = false
  private tail: Promise<void> = Promise.resolve()
  private error?: Error
  /** Not written yet (see begin): the first write that leaves the file incomplete writes it. */
  private deferred = false

  private constructor(
    readonly path: string,
    private readonly header: Header,
    written: RangeSet,
    durable: RangeSet,
    private readonly io: JournalIo,
    /** A journal of this path is on disk (found, or written since): remove has one to remove. */
    private onDisk: boolean,
  ) {
    this.written = written
    this.durable = durable
  }

  /**
   * What is on disk for this file, without writing anything yet: a pull sends its requests
   * first and calls `begin` while they are on their way.
   */
  static load(path: string, identity: FileIdentity, bootId: string | undefined, io: JournalIo = defaultIo): Loaded {
    const header: Header = {v: 1, ...identity, bootId}
    let discarded: string | undefined
    if (existsSync(path)) {
      const parsed = parse(readFileSync(path, 'utf8'))
      const why = parsed ? mismatch(parsed.header, identity) : 'the resume journal is unreadable'
      if (!why && parsed) {
        const sameBoot = Boolean(bootId && parsed.header.bootId === bootId)
        const written = sameBoot ? parsed.written : parsed.durable.clone()
        const journal = new Journal(path, header, written, parsed.durable.clone(), io, true)
        return {journal, written: written.clone()}
      }
      discarded = why
    }
    return {journal: new Journal(path, header, new RangeSet(), new RangeSet(), io, discarded !== undefined), written: new RangeSet(), discarded}
  }

  /**
   * A new journal for a part file whose bytes `on` are already on disk, flushed (another client's
   * partial download, adopt.ts): written durably by `begin`.
   */
  static seeded(path: string, identity: FileIdentity, bootId: string | undefined, on: RangeSet, io: JournalIo = defaultIo): Loaded {
    return {journal: new Journal(path, {v: 1, ...identity, bootId}, on.clone(), on.clone(), io, false), written: on.clone()}
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

  /**
   * What the journal says of its download now: the bytes written (from another host, the
   * durable ones: its checkpoints) and the file's size. For a pull that waits on the one
   * writing it, and for what a plan says is partly downloaded.
   */
  static peek(path: string, bootId: string | undefined): {kept: number; size?: number} | undefined {
    if (!existsSync(path)) return undefined
    const parsed = parse(readFileSync(path, 'utf8'))
    if (!parsed) return undefined
    return {kept: (bootId && parsed.header.bootId === bootId ? parsed.written : parsed.durable).total, size: parsed.header.size}
  }

  /** Whether the run that wrote this journal found the server's validators taking turns. */
  static validatorsTookTurns(path: string): boolean {
    if (!existsSync(path)) return false
    return parse(readFileSync(path, 'utf8'))?.header.validatorsTakeTurns === true
  }

  /** Write the journal out (replacing one that was discarded); appends queued meanwhile follow it. */
  async begin(): Promise<void> {
    // A fresh download of known size waits for its first write: a file that arrives whole in it
    // (a dataset's small files, thousands of them) has nothing to resume, and goes straight to
    // its hash and rename, so its journal would only be written and removed (seven operations
    // of the thread pool per file). One that does not is journaled right then, that range in it.
    if (!this.onDisk && this.written.total === 0 && this.header.size !== undefined) {
      this.deferred = true
      return
    }
    await this.enqueue(async () => {
      // With nothing durable yet to protect, losing this journal to a crash only means starting
      // over, as without it: no fsyncs for it (two per file, which a dataset of many small
      // files paid each). The first checkpoint writes it durably.
      if (!this.handle) await this.rewrite(this.durable.total > 0)
    })
    if (this.error) throw this.error
  }

  /** Called right after bytes [start, end) reached the part file. */
  recordWritten(start: number, end: number): void {
    if (this.error) throw this.error
    this.written.add(start, end)
    if (this.deferred) {
      if (this.written.total === this.header.size) return
      this.deferred = false
      void this.enqueue(() => this.rewrite(false))
      return
    }
    this.pending.push(`W ${start} ${end}\n`)
    if (this.appendQueued) return
    this.appendQueued = true
    void this.enqueue(async () => {
      this.appendQueued = false
      const lines = this.pending.join('')
      this.pending = []
      if (lines && this.handle) await this.handle.write(lines)
    })
  }

  /** Make what is written durable: sync the data first, then the journal that names it. */
  async checkpoint(datasync: () => Promise<void>): Promise<void> {
    const snapshot = this.written.clone()
    await datasync()
    await this.enqueue(async () => {
      this.durable = snapshot
      await this.rewrite()
    })
    if (this.error) throw this.error
  }

  /** Every line recorded so far has been handed to the kernel. */
  async flushed(): Promise<void> {
    await this.tail
    if (this.error) throw this.error
  }

  get writtenRanges(): RangeSet {
    return this.written
  }

  close(): Promise<void> {
    return this.enqueue(async () => this.closeHandle(), true)
  }

  remove(): Promise<void> {
    return this.enqueue(async () => {
      await this.closeHandle()
      if (this.onDisk) await this.io.rm(this.path)
      this.onDisk = false
    }, true)
  }

  /** One operation at a time, in order; after a failure only closing and removing still run. */
  private enqueue(op: () => Promise<void>, always = false): Promise<void> {
    const run = this.tail.then(() => (this.error && !always ? undefined : op())).catch((error: Error) => void (this.error ??= error))
    this.tail = run
    return run
  }

  private async closeHandle(): Promise<void> {
    const handle = this.handle
    this.handle = undefined
    this.pending = []
    await handle?.close().catch(() => {})
  }

  private async rewrite(durably = true): Promise<void> {
    const lines = [JSON.stringify(this.header)]
    for (const r of this.durable.toArray()) lines.push(`D ${r.start} ${r.end}`)
    for (const r of this.written.toArray()) lines.push(`W ${r.start} ${r.end}`)
    // The rewrite names every range recorded so far: lines still waiting are in it.
    this.pending = []
    const tmp = `${this.path}.tmp`
    const handle = await this.io.open(tmp, 'w')
    try {
      await handle.write(lines.join('\n') + '\n')
      if (durably) await handle.sync()
    } catch (error) {
      // A full disk fails here: leave the journal as it was and no stray temporary file beside it.
      await handle.close().catch(() => {})
      await this.io.rm(tmp).catch(() => {})
      throw error
    }
    await handle.close()
    await this.io.rename(tmp, this.path)
    this.onDisk = true
    this.deferred = false
    if (durably) await this.io.syncDirectory(dirname(this.path))
    await this.handle?.close().catch(() => {})
    this.handle = await this.io.open(this.path, 'a')
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

/**
 * This boot's id, which tells a journal or lock of a process that ran before a reboot. Read once
 * per process (a boot outlives it): it was read two or three times per file, three syscalls
 * each, which a dataset of thousands of small files felt.
 */
export function currentBootId(): string | undefined {
  if (bootId === null) {
    try {
      bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined
    } catch {
      bootId = undefined
    }
  }
  return bootId
}
let bootId: string | undefined | null = null
