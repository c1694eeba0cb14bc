import {existsSync} from 'node:fs'
import {rename, rm} from 'node:fs/promises'
import {dirname} from 'node:path'
import {ExitCode, MtuneError, errorMessage} from '../errors.js'
import {fsyncDirectory} from '../fs-atomic.js'
import {formatBytes} from '../units.js'
import {adoptLeftover, type Leftover} from './adopt.js'
import {fileExists, noRoomToReserve, type Destination} from './destination.js'
import type {Elsewhere} from './pull-types.js'
import {Journal, currentBootId, type FileIdentity} from './journal.js'
import {openPartFile, whenOpen, type OpenPartFile, type PartFile} from './part-file.js'
import {INLINE_HASH_MAX, InlineHasher} from './inline-hasher.js'
import {PrefixHasher} from './prefix-hasher.js'
import {reserveFor} from './reserve-space.js'
import type {RangeSet} from './range-set.js'

/** `slow`: the part file's writes wait on the disk (write-gate.ts). */
type Notes = {warn(message: string): void; info(message: string): void; debug?(message: string): void; slow?(): void}

/**
 * Where the part file goes, as the free-space check found it: `free` bytes (undefined: not known),
 * for whether to reserve a fresh file's blocks; `open`: tests' disks; `elsewhere`: the fix a
 * full disk's message offers.
 */
export type Room = {free?: number; open?: OpenPartFile; elsewhere?: Elsewhere}

/** Tell the hasher of a longer prefix only once it grew by this much, between ticks. */
const HASH_STEP = 8 * 1024 * 1024

/**
 * The download on disk: the part file, its resume journal and the running hash, from what an
 * earlier run left to the file renamed into place. The engine tells it what was written; it
 * alone writes the journal and owns the handles. Nothing is put in place unchecked, and a
 * finished file survives a power loss.
 */
export class PartialFile {
  private part?: PartFile
  private hasher?: PrefixHasher | InlineHasher
  private opened?: Promise<PartFile>
  /** Settles once the part file is open, or could not be. */
  private settled: Promise<unknown> = Promise.resolve()
  private checkpointing = false
  private preflushed = false

  private constructor(
    private readonly dest: Destination,
    private readonly journal: Journal,
    private readonly notes: Notes,
    /** What an earlier run left on disk. */
    readonly kept: RangeSet,
    /** Where `kept` came from when another client left it (adopt.ts). */
    readonly adoptedFrom?: string,
  ) {}

  /**
   * What an earlier run left, per its journal; one that no longer fits the file, or whose part
   * file is gone, is started over. With none, another client's partial download of the file
   * (`adopt`, adopt.ts) is taken over where it can be.
   */
  static async load(dest: Destination, identity: FileIdentity, notes: Notes, adopt?: Leftover): Promise<PartialFile> {
    const adopted = adopt ? await PartialFile.adopt(dest, identity, adopt, notes) : undefined
    if (adopted) return adopted
    let loaded = Journal.load(dest.journalPath, identity, currentBootId())
    if (loaded.discarded) notes.warn(`discarding the partial download: ${loaded.discarded}; starting over`)
    if (loaded.written.total > 0 && !(await fileExists(dest.partPath))) {
      notes.warn('the partial file is gone: starting over')
      await loaded.journal.remove()
      loaded = Journal.load(dest.journalPath, identity, currentBootId())
    }
    return new PartialFile(dest, loaded.journal, notes, loaded.written)
  }

  /** Another client's partial download moved in as the part file, when mtune has none of its own there. */
  private static async adopt(dest: Destination, identity: FileIdentity, from: Leftover, notes: Notes): Promise<PartialFile | undefined> {
    if (!identity.ranges || identity.size === undefined || existsSync(dest.journalPath) || existsSync(dest.partPath)) return undefined
    const taken = await adoptLeftover(from, dest.partPath, identity.size)
    if (taken.why) notes.info(`not taking over the partial download another client left in ${from.path}: ${taken.why}`)
    if (!taken.ranges.total) return undefined
    const pieces = taken.ranges.toArray().length
    notes.info(`taking over the partial download another client left: ${formatBytes(taken.ranges.total)}${pieces > 1 ? ` in ${pieces} pieces` : ''} in ${from.path}`)
    const seeded = Journal.seeded(dest.journalPath, identity, currentBootId(), taken.ranges)
    return new PartialFile(dest, seeded.journal, notes, seeded.written, from.path)
  }

  get fresh(): boolean {
    return this.kept.total === 0
  }

  /** Ranges on disk now. */
  get written(): RangeSet {
    return this.journal.writtenRanges
  }

  /** Nothing was written: a fresh journal that was never needed goes. */
  async abandon(): Promise<void> {
    if (this.fresh) await this.journal.remove()
  }

  /** After close: bytes no run can continue (a download without ranges) go, journal and all. */
  async discard(): Promise<void> {
    await this.journal.remove()
    await rm(this.dest.partPath, {force: true})
  }

  /**
   * Journal, part file and hasher, made ready while the first requests wait for their first
   * byte: the requests go out without waiting on the disk, and their writes (through `writer`)
   * wait for it. `onHashFailure`: the hash cannot be finished; the pull should stop now.
   */
  open(size: number | undefined, room: Room, onHashFailure: (error: Error) => void): Promise<PartFile> {
    this.opened = this.openNow(size, room, onHashFailure)
    this.settled = this.opened.catch(() => undefined)
    return this.opened
  }

  /** Settles once the part file is open, or could not be. */
  opening(): Promise<unknown> {
    return this.settled
  }

  /** The part file for writes that may come before it is open. */
  get writer(): PartFile {
    if (!this.opened) throw new Error('internal: the part file is not being opened')
    return whenOpen(this.opened)
  }

  private async openNow(size: number | undefined, room: Room, onHashFailure: (error: Error) => void): Promise<PartFile> {
    // One turn of the event loop first, so that the requests just started reach their sockets
    // before the journal's and the part file's opening take thread-pool turns.
    await new Promise((resolve) => setImmediate(resolve))
    const fresh = this.fresh
    const begun = this.journal.begin()
    const debug = (line: string) => this.notes.debug?.(line)
    const {reserve, why} = fresh && size !== undefined ? reserveFor(size, room.free) : {reserve: false}
    if (why) debug(`not reserving space for ${this.dest.partPath}: ${why}`)
    const part = await (room.open ?? openPartFile)(this.dest.partPath, size, fresh, {reserve, debug, slow: () => this.notes.slow?.()}).catch(async (error) => {
      await begun.catch(() => {})
      if (fresh) await this.journal.remove()
      if ((error as NodeJS.ErrnoException).code === 'ENOSPC' && size !== undefined) throw await noRoomToReserve(this.dest, size, room.elsewhere)
      throw new MtuneError('not-writable', `cannot create ${this.dest.partPath}: ${errorMessage(error)}`, ExitCode.localDisk, {cause: error})
    })
    await begun.catch(async (error) => {
      await part.close().catch(() => {})
      throw new MtuneError('not-writable', `cannot write the resume journal ${this.dest.journalPath}: ${errorMessage(error)}`, ExitCode.localDisk, {cause: error})
    })
    this.part = part
    // A hash that cannot be finished stops the pull now, not at the end; what is on disk is kept.
    this.hasher = size !== undefined && size <= INLINE_HASH_MAX ? new InlineHasher(this.dest.partPath) : new PrefixHasher(this.dest.partPath, onHashFailure)
    return part
  }

  /** Bytes [start, end) reached the part file. */
  record(start: number, end: number): void {
    this.journal.recordWritten(start, end)
    // Between ticks too: the less is left to hash after the last byte, the sooner the digest.
    this.hasher?.extend(this.journal.writtenRanges.prefixEnd, HASH_STEP)
  }

  /** The monitor tick: hash what is contiguous from the start. */
  hashOn(): void {
    this.hasher?.extend(this.journal.writtenRanges.prefixEnd)
  }

  /**
   * Make what is written durable (journal.ts says how). Rejects with the disk's error only;
   * one already running makes this a no-op.
   */
  async checkpoint(): Promise<void> {
    if (this.checkpointing || !this.part) return
    this.checkpointing = true
    const part = this.part
    try {
      await this.journal.checkpoint(() => part.datasync())
    } finally {
      this.checkpointing = false
    }
  }

  /**
   * Everything is handed out: write back what is on disk so far while the last bytes come, so
   * that the flush after the last one has little left to do. Once.
   */
  preflush(): void {
    if (this.preflushed || !this.part) return
    this.preflushed = true
    void this.part.datasync().catch(() => {})
  }

  /**
   * The download is complete: flush it while the hash finishes, check the digest (and
   * `verify`), and rename it into place for good. A file that fails a check is removed.
   */
  async finish(expected: {sha256: string; from?: string} | undefined, verify: ((partPath: string, sha256: string) => Promise<void>) | undefined, debug: (m: string) => void): Promise<string> {
    const part = this.part!
    const size = this.written.total
    // The flush makes the renamed file survive a power loss; it runs while the hash finishes.
    const [, digest] = await Promise.all([part.datasync().then(() => debug('flushed')), this.hasher!.finish(size).then((d) => (debug('hashed'), d))])
    debug('flushed and hashed')
    try {
      if (expected && digest !== expected.sha256) {
        const from = expected.from ? ` (from ${expected.from})` : ''
        throw new MtuneError('digest-mismatch', `sha256 mismatch for ${this.dest.path}: expected ${expected.sha256}${from}, got ${digest}; the file was removed`, ExitCode.integrity)
      }
      await verify?.(this.dest.partPath, digest)
    } catch (error) {
      await this.closePart()
      await this.journal.remove()
      await rm(this.dest.partPath, {force: true})
      throw error
    }
    await this.closePart()
    await rename(this.dest.partPath, this.dest.path)
    // The rename itself must survive a power loss: a finished file is never lost.
    await fsyncDirectory(dirname(this.dest.path))
    await this.journal.remove()
    return digest
  }

  /** Whatever happened: what is on disk is recorded, the handles are closed. */
  async close(): Promise<void> {
    await this.settled
    this.hasher?.close()
    if (this.part) {
      const part = this.part
      await this.journal.checkpoint(() => part.datasync()).catch(() => {})
      await this.closePart().catch(() => {})
    }
    await this.journal.close()
  }

  private async closePart(): Promise<void> {
    const part = this.part
    this.part = undefined
    await part?.close()
  }
}
