import {rm, stat} from 'node:fs/promises'
import {setTimeout as sleep} from 'node:timers/promises'
import type {Dispatcher} from 'undici'
import {ExitCode, MtuneError, errorMessage} from '../errors.js'
import {closeDispatcher, createDispatcher} from '../net/dispatcher.js'
import {probe, type Probe} from '../net/probe.js'
import {redact} from '../net/request.js'
import {backoffDelay, classifyNetworkError} from '../net/retry-policy.js'
import {ensureWritableDirectory, fileDestination, fileExists, resolveDestination, sha256File, type Destination} from './destination.js'
import {Journal, currentBootId} from './journal.js'
import {adoptedHole, aria2Beside, judgeLeftover, leftoverAt, openedElsewhere, type Leftover} from './adopt.js'
import {HolderProgress} from './holder-progress.js'
import {PullLock, holderWords, sourceId} from './pull-lock.js'
import {backendCopies, differentCopiesSaid, sameCopiesSaid} from './backend-copies.js'
import {parseOutput, parseSha256, parseTarget} from './validate.js'
import {DEFAULTS, type PulledBefore, type PullEvents, type PullOptions, type PullResult} from './pull-types.js'
import {unchangedSince, validatorsOf} from './previous-pull.js'
import {Transfer} from './transfer.js'
import {saysSlowDiskOnce} from './write-gate.js'
import {StartOver, interrupted} from './transfer-errors.js'

export type {Progress, PullEvents, PullOptions, PullResult} from './pull-types.js'

const MAX_RESTARTS = 3
/** What the probe request asks for; its body becomes the first piece. */
const FIRST_PIECE = 4 * 1024 * 1024

export async function pull(options: PullOptions, events: PullEvents = {}): Promise<PullResult> {
  const url = parseTarget(options.url, 'URL')
  // The primary, or a mirror, given twice is one source: more connections to it are the ramp's call.
  const mirrors = [...new Set((options.mirrors ?? []).map((m) => parseTarget(m, '--mirror URL')))].filter((m) => m !== url)
  const expected = options.sha256 === undefined ? undefined : parseSha256(options.sha256)
  parseOutput(options.output)
  const dispatcher = options.dispatcher ?? createDispatcher({stallTimeoutMs: options.stallTimeoutMs ?? DEFAULTS.stallTimeoutMs})
  const started = performance.now()
  const place = (dest: Destination): Destination =>
    options.partPath ? {...dest, partPath: options.partPath, journalPath: `${options.partPath}.journal`} : dest
  // What another client left of this file to take over (adopt.ts), with the size its source gives.
  const leftoverFor = (dest: Destination): PullOptions['adopt'] => {
    const found = leftoverAt(dest.path, options.adopt, options.continue)
    return found && {...found, size: options.adopt?.size}
  }
  // A slow disk is said once per pull, however many attempts meet it (a plan says it once for all its files).
  const slowDisk = events.slowDisk ?? saysSlowDiskOnce(events.info)
  let lock: PullLock | undefined
  // The file appeared while this pull waited on another that pulled the same URL there.
  let handedOver = false
  // And the sha256 that pull checked it against, when it had one.
  let checkedBy: string | undefined
  const existing = (dest: Destination, want: string | undefined, server?: Probe['file']) =>
    alreadyThere(dest, {expected: want, force: options.force, continuing: options.continue, url, started, server, handedOver, checkedBy, before: options.pulledBefore?.(dest.path)}, events)
  // Held from before the destination is looked at until it is in place: a second pull of the
  // same file waits, then finds it complete.
  const claim = async (dest: Destination) => {
    if (lock?.partPath === dest.partPath) return
    lock?.release()
    const before = await fileExists(dest.path)
    lock = await lockFor(dest, {source: sourceId(url), sha256: expected}, options.signal, events)
    handedOver = Boolean(lock?.waitedOnSame) && !before
    checkedBy = handedOver ? lock?.checkedBy : undefined
  }
  try {
    const fileDest = await fileDestination(options.output)
    const early = fileDest && place(fileDest)
    // With --sha256 an existing file is checked before the network is asked; without it, after
    // the server's first answer, which may publish the digest and gives the size to compare.
    if (early) {
      await claim(early)
      // One to continue is judged once the server has said the file's size: a shorter one is not hashed.
      const done = expected && !options.continue ? await existing(early, expected) : undefined
      if (done) return done
    }
    const guess = early ?? (await resolveDestination(options.output, undefined, url).then(place).catch(() => undefined))
    // Where the file goes is checked before the network is asked anything.
    if (guess) await ensureWritableDirectory(guess, {create: false, elsewhere: options.elsewhere})
    // Validators that take turns over one file's copies are ignored from then on
    // (backend-copies.ts): the file is checked by its size, a sample of the bytes kept, and its
    // digest. As the run that left this journal found them, if it did.
    let turns = guess ? Journal.validatorsTookTurns(guess.journalPath) : false
    if (turns) events.info?.(`the last run found this server's copies of the file under more than one ETag/Last-Modified: going by size and a sample of the bytes kept`)
    let keep = false
    // What attempts whose bytes were kept (keep) fetched, for the result's count.
    let carriedOver: number | undefined
    for (let restart = 0; ; restart++) {
      const resuming = restart === 0 || keep
      keep = false
      const hole = guess && resuming ? (Journal.firstMissing(guess.journalPath, currentBootId()) ?? adoptedHole(guess, leftoverFor(guess))) : undefined
      const start = hole?.start ?? 0
      const length = Math.min(FIRST_PIECE, hole ? hole.end - hole.start : FIRST_PIECE)
      const answered = await probeWithRetries(dispatcher, url, options, events, start, length)
      const probed = turns ? {...answered, file: {...answered.file, etag: undefined, lastModified: undefined}} : answered
      // The digest the server publishes (the Hub's X-Linked-Etag) checks a plain URL's file too.
      const published = probed.file.publishedSha256
      if (restart === 0 && published && expected && published !== expected) {
        events.warn?.(`the server publishes sha256 ${published} for this file (X-Linked-Etag), not the one expected (${expected}): the file is checked against the one expected`)
      }
      const want = expected ?? published
      const dest = early ?? place(await resolveDestination(options.output, probed.file.filename, url, probed.file.finalUrl))
      // Held, then looked at: a pull that waited for another finds the file complete.
      const finished = async (): Promise<PullResult | undefined> => {
        await claim(dest)
        const done = await existing(dest, want, probed.file).catch(async (error: unknown) => {
          await probed.response?.body.dump().catch(() => {})
          throw error
        })
        if (done) await probed.response?.body.dump().catch(() => {})
        return done
      }
      const done = early && expected && !options.continue ? undefined : await finished()
      if (done) return done
      await ensureWritableDirectory(dest, {create: true, elsewhere: options.elsewhere})
      // A directory just made had no room for the lock before; another pull may have made it too.
      const madeMeanwhile = lock ? undefined : await finished()
      if (madeMeanwhile) return madeMeanwhile
      if (restart === 0 && webPage(probed.file.contentType, dest.path)) {
        events.warn?.(`${redact(url)} answers with a web page (${probed.file.contentType}), not a file: a login or error page, or a page about the file? Check the URL`)
      }
      if (restart === 0 && probed.file.contentEncoding) {
        events.warn?.(`${redact(url)} sends the file compressed (Content-Encoding: ${probed.file.contentEncoding}) though mtune asked for it as is: it is saved as sent, compressed, as curl and wget save it`)
      }
      let transfer: Transfer | undefined
      try {
        // Named in a mismatch only where it came from the server: --sha256 or a model's listing speak for themselves.
        const expectedFrom = !expected && published ? "the server's X-Linked-Etag" : undefined
        transfer = new Transfer({options: {...options, adopt: leftoverFor(dest)}, events: {...events, slowDisk}, dispatcher, dest, probed, expected: want, expectedFrom, validatorsTakeTurns: turns, carriedOver, mirrors, started})
        const result = await transfer.run()
        // An aria2c control file not taken over with its file (--force, or its file was gone)
        // describes a download this one replaced: left, it would call the new file aria2c's.
        await rm(`${dest.path}.aria2`, {force: true})
        return result
      } catch (error) {
        if (!(error instanceof StartOver)) throw error
        // Not a new version where the server's copies hold the same bytes under other dates.
        const copies = error.changed && error.now && !turns && probed.file.size !== undefined && probed.file.ranges
          ? await backendCopies(dispatcher, url, options.headers ?? {}, probed.file.size, options.signal)
          : undefined
        if (copies) events.debug?.(`after "${error.message}": the server's copies are ${copies.verdict} (${copies.validators.join(', ')})`)
        if (copies?.verdict === 'same') {
          turns = true
          keep = true
          carriedOver = (carriedOver ?? 0) + (transfer?.bytesFetched ?? 0)
          events.warn?.(sameCopiesSaid(copies, want !== undefined))
          continue
        }
        if (error.changed && restart >= MAX_RESTARTS) {
          const split = copies?.verdict === 'differ' ? `; ${differentCopiesSaid(copies)}` : ''
          throw new MtuneError('file-changing', `the file kept changing on the server (${error.message}${split}); try again later`, ExitCode.integrity)
        }
        if (!error.changed && restart >= (options.maxRetries ?? DEFAULTS.maxRetries)) {
          throw new MtuneError('retries', `giving up: ${error.message}`, ExitCode.remote)
        }
        events.warn?.(error.changed ? `the file changed on the server (${error.message}): starting over` : `${error.message}: starting over`)
        if (!error.changed) {
          await sleep(backoffDelay(restart + 1, options.random ?? Math.random), undefined, {signal: options.signal}).catch(() => {
            throw interrupted()
          })
        }
        await rm(dest.partPath, {force: true})
        await rm(dest.journalPath, {force: true})
      }
    }
  } finally {
    lock?.release()
    if (!options.dispatcher) await closeDispatcher(dispatcher)
  }
}

/** HTML where a file was asked for: saved as the "model", it fails only when loaded. */
const webPage = (contentType: string | undefined, path: string) => /^\s*(text\/html|application\/xhtml\+xml)\b/i.test(contentType ?? '') && !/\.x?html?$/i.test(path)

/**
 * Undefined where no lock file can be made (a read-only or missing directory, a full disk):
 * nothing can be written there either, which the checks that follow report in their words.
 */
async function lockFor(dest: Destination, what: {source: string; sha256?: string}, signal: AbortSignal | undefined, events: PullEvents): Promise<PullLock | undefined> {
  const bootId = currentBootId()
  const holders = events.progress && new HolderProgress(dest.journalPath, bootId, events.progress)
  try {
    return await PullLock.acquire(dest.partPath, {
      bootId,
      ...what,
      signal,
      onWait: (holder) =>
        events.waiting
          ? events.waiting(holder && holderWords(holder), dest.path)
          : events.info?.(`waiting for another mtune${holder ? ` (${holderWords(holder)})` : ''} that is pulling to ${dest.path}`),
      whileWaiting: () => holders?.look(),
    })
  } catch (error) {
    if (signal?.aborted) throw interrupted()
    events.debug?.(`no lock for ${dest.partPath}: ${errorMessage(error)}`)
    return undefined
  }
}

/**
 * An existing destination: done if it has the expected digest, if another mtune pulled this
 * URL there (the server's size) while this one waited, or if an earlier mtune pull put it there
 * from this URL and neither it nor the server's file changed since; refused without --force.
 */
async function alreadyThere(
  dest: Destination,
  how: {
    expected: string | undefined
    force: boolean | undefined
    continuing: boolean | undefined
    url: string
    started: number
    /** The server's file, as its first answer gave it (not yet asked: undefined). */
    server?: Probe['file']
    handedOver: boolean
    /** The sha256 the pull waited on checked the file against before putting it in place. */
    checkedBy?: string
    /** What an earlier mtune pull recorded of this file. */
    before?: PulledBefore
  },
  events: PullEvents,
): Promise<PullResult | undefined> {
  const {expected, force, url, started, server, before} = how
  const serverSize = server?.size
  if (!(await fileExists(dest.path))) return undefined
  const own = await fileExists(dest.journalPath)
  const aria2 = aria2Beside(dest.path)
  if (aria2 && !own) return takingOver(dest, aria2, force, serverSize)
  // --continue: a shorter file is another tool's download cut short, which the transfer takes over.
  if (how.continuing && !own && serverSize !== undefined && (await stat(dest.path)).size < serverSize) return undefined
  const complete = async (digest: string, pulledByAnother: boolean): Promise<PullResult> => {
    const {size} = await stat(dest.path)
    const seconds = (performance.now() - started) / 1000
    const verified = expected !== undefined
    return {url: redact(url), path: dest.path, size, sha256: digest, ...validatorsOf(server ?? {}), verified, alreadyComplete: true, pulledByAnother, seconds, averageRate: 0, connections: 0, retries: 0, bytesFetched: 0, resumedBytes: size, mirrors: []}
  }
  if (expected) {
    // The holder pulled this URL for this digest, and mtune renames into place only what it
    // checked: hashing it again would read the whole model once more on every waiter (eight ranks
    // sharing an NFS cache read it eight times).
    if (how.handedOver && how.checkedBy === expected && !own) {
      handedOverSaid(events)(`another mtune pulled ${dest.path} from this URL and checked its sha256 while this one waited: taking it as it is`)
      return complete(expected, true)
    }
    const digest = await sha256File(dest.path)
    if (digest === expected) return complete(digest, how.handedOver)
    if (!force) {
      throw new MtuneError('exists', `${dest.path} already exists with a different sha256; use --force to replace it`, ExitCode.usage)
    }
  }
  // The pull that held the lock put it in place (mtune renames only a finished, checked file);
  // --force asks to replace a file that was there before, not one fetched from here just now.
  if (how.handedOver && !expected && !own && serverSize !== undefined && (await stat(dest.path)).size === serverSize) {
    handedOverSaid(events)(`another mtune pulled ${dest.path} from this URL while this one waited: hashing it, not fetching it again`)
    return complete(await sha256File(dest.path), true)
  }
  // A re-run of the same pull (a script, a job at every boot): the file it put here, if unchanged.
  if (!force && !own && before && server && unchangedSince(before, server)) {
    const when = before.at.slice(0, 10)
    const digest = (await stat(dest.path)).size === before.size ? await sha256File(dest.path) : undefined
    if (digest === before.sha256) {
      // Without a validator the size is all there is to go by (aria2c -c's rule): said as such.
      const same = before.etag || before.lastModified ? 'is unchanged' : 'has the same size (it names no version: no ETag or Last-Modified)'
      events.info?.(`${dest.path} is the file mtune pulled from this URL on ${when}, and the server's ${same}: kept (checked against the sha256 recorded then)`)
      return complete(digest, false)
    }
    throw new MtuneError('exists', `${dest.path} is no longer the file mtune pulled from this URL on ${when} (changed on disk since): mtune verify ${dest.path} --repair fetches it again, or --force`, ExitCode.integrity)
  }
  if (!force) throw new MtuneError('exists', existsSaid(dest.path, (await stat(dest.path)).size, serverSize), ExitCode.usage)
  return undefined
}

/** Where a file taken from the pull waited on is said: in a plan (events.waiting), its result line counts them. */
const handedOverSaid = (events: PullEvents) => (message: string) => (events.waiting ? events.debug : events.info)?.(message)

/**
 * aria2c's partial download where the file goes (FILE.aria2 beside it) is neither this file nor
 * another: the transfer takes it over (adopt.ts). One aria2c is still writing is refused, --force
 * or not; one whose records cannot be gone by is replaced with --force only.
 */
async function takingOver(dest: Destination, aria2: Leftover, force: boolean | undefined, serverSize: number | undefined): Promise<undefined> {
  const said = `${dest.path} is aria2c's partial download (${dest.path}.aria2 beside it)`
  const holder = await openedElsewhere(dest.path)
  if (holder) throw new MtuneError('exists', `${said}, and process ${holder} still has it open: let that download finish, or stop it and pull again`, ExitCode.usage)
  const why = judgeLeftover(aria2, serverSize).why
  if (why && !force) throw new MtuneError('exists', `${said}, which mtune does not take over: ${why}; finish it with aria2c -c, or pull it again with --force`, ExitCode.usage)
  return undefined
}

/**
 * Pure: why an existing file stops a pull, with what its size says against the server's: the
 * same size is likely this file (check it), a shorter one a download cut short by another tool
 * (mtune resumes only its own .part), another size another file.
 */
export function existsSaid(path: string, size: number, serverSize?: number): string {
  if (serverSize === undefined) return `${path} already exists; use --force to replace it, or -o to choose another path`
  if (size === serverSize) return `${path} already exists, as large as the server's file (${size} bytes): likely this file. Check it: mtune verify ${path} --sha256 HEX; replace it: --force`
  if (size < serverSize) return `${path} already exists, ${size} of the server's ${serverSize} bytes: a download another tool cut short (wget, curl)? --continue keeps it as the file's start; --force pulls it again`
  return `${path} already exists and is not the server's file (${size} bytes, not ${serverSize}); use --force to replace it, or -o to choose another path`
}

async function probeWithRetries(
  dispatcher: Dispatcher,
  url: string,
  options: PullOptions,
  events: PullEvents,
  start: number,
  length: number,
): Promise<Probe> {
  const random = options.random ?? Math.random
  const maxRetries = options.maxRetries ?? DEFAULTS.maxRetries
  for (let attempt = 1; ; attempt++) {
    try {
      return await probe(dispatcher, url, options.headers ?? {}, options.signal, start, length)
    } catch (error) {
      if (options.signal?.aborted) throw interrupted()
      const e = classifyNetworkError(error)
      // Refused or unreachable before any byte was ever fetched is more likely a wrong URL
      // than a hiccup: a few tries, not the full patience kept for a download under way.
      const limit = e.status === undefined ? Math.min(maxRetries, 3) : maxRetries
      if (e.kind === 'fatal' || e.kind === 'bad-response' || attempt > limit) {
        throw new MtuneError('remote', `cannot download ${redact(url)}: ${e.message}`, ExitCode.remote, {cause: error})
      }
      const delay = backoffDelay(attempt, random, undefined, e.retryAfterMs)
      events.warn?.(`${e.message}; retrying in ${(delay / 1000).toFixed(1)}s`)
      await sleep(delay, undefined, {signal: options.signal}).catch(() => {
        throw interrupted()
      })
    }
  }
}
