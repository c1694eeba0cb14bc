import {lstat} from 'node:fs/promises'
import {ExitCode, MtuneError} from '../errors.js'
import {closeDispatcher, createDispatcher} from '../net/dispatcher.js'
import {peekFile} from '../net/probe.js'
import {redact} from '../net/request.js'
import {classifyNetworkError} from '../net/retry-policy.js'
import {aria2Beside, judgeLeftover, leftoverAt} from '../transfer/adopt.js'
import {checkFreeSpace, fileDestination, resolveDestination} from '../transfer/destination.js'
import {Journal, currentBootId} from '../transfer/journal.js'
import {holderWords, liveHolder} from '../transfer/pull-lock.js'
import {DEFAULTS, type PulledBefore} from '../transfer/pull-types.js'
import {parseOutput, parseSha256, parseTarget} from '../transfer/validate.js'
import {hubFileHeaders} from './hub-files.js'
import {pulledBeforeOf, urlCacheFor} from './pull-url.js'
import {routeThroughCache} from './url-through-cache.js'

/** What is at the destination already, as a pull would find it. */
export type OnDisk =
  | {state: 'nothing'}
  /** mtune's part file: `bytes` written by a pull that was cut (resumed), or one running now. */
  | {state: 'part'; bytes: number; holder?: string}
  /** aria2c's download in the file's place, or with --continue the file as a start: taken over. */
  | {state: 'leftover'; bytes: number; of: 'aria2c' | 'continue'}
  /**
   * A file: kept when it checks against a digest, else refused without --force. `pulledAt`: an
   * earlier mtune pull of this very URL put it there (its record's date): kept if unchanged.
   */
  | {state: 'file'; bytes: number; pulledAt?: string}

export interface UrlDryRun {
  dryRun: true
  url: string
  /** Where the request led (redirects followed), when elsewhere. */
  finalUrl?: string
  /** The rack cache the bytes would come through, when it serves this URL's origin. */
  cache?: string
  path: string
  size: number | null
  /** Ranges answered: a segmented pull over several connections; else one stream. */
  ranges: boolean
  publishedSha256?: string
  onDisk: OnDisk
  /** Free bytes where the file goes (null: the directory is not there yet, or statfs could not tell). */
  freeBytes: number | null
}

/**
 * `pull URL --dry-run`: what the pull would do, with one request of one byte and nothing
 * written: the file's size and whether it comes in ranges, where it would go (the name the
 * server gives included), what is there already, and whether the disk has room (a pull that
 * would fail for space fails here the same way).
 */
export async function urlDryRun(
  given: string,
  o: {output?: string; sha256?: string; continue?: boolean; cache?: string; stallTimeoutMs?: number; signal?: AbortSignal},
): Promise<UrlDryRun> {
  const url = parseTarget(given, 'URL')
  parseOutput(o.output)
  if (o.sha256 !== undefined) parseSha256(o.sha256)
  const dispatcher = createDispatcher({stallTimeoutMs: o.stallTimeoutMs ?? DEFAULTS.stallTimeoutMs})
  try {
    const through = urlCacheFor(url, o.cache)
    const routed = through ? (await routeThroughCache(url, through, dispatcher, o.signal)).routed : undefined
    const target = routed?.url ?? url
    const file = await peekFile(dispatcher, target, hubFileHeaders(url) ?? {}, o.signal).catch((error: unknown) => {
      throw new MtuneError('remote', `cannot download ${redact(url)}: ${classifyNetworkError(error).message}`, ExitCode.remote, {cause: error})
    })
    const dest = (await fileDestination(o.output)) ?? (await resolveDestination(o.output, file.filename, url, file.finalUrl))
    const onDisk = await onDiskAt(dest.path, dest.partPath, dest.journalPath, file.size, o.continue, pulledBeforeOf(url))
    const kept = onDisk.state === 'part' || onDisk.state === 'leftover' ? onDisk.bytes : 0
    const room = file.size === undefined || onDisk.state === 'file' ? {} : await checkFreeSpace(dest, file.size, kept)
    return {
      dryRun: true,
      url: redact(url),
      ...(file.finalUrl !== target ? {finalUrl: redact(file.finalUrl)} : {}),
      ...(routed ? {cache: redact(through!)} : {}),
      path: dest.path,
      size: file.size ?? null,
      ranges: file.ranges,
      ...(file.publishedSha256 ? {publishedSha256: file.publishedSha256} : {}),
      onDisk,
      freeBytes: room.free ?? null,
    }
  } finally {
    await closeDispatcher(dispatcher)
  }
}

async function onDiskAt(path: string, partPath: string, journalPath: string, size: number | undefined, continuing: boolean | undefined, before: (path: string) => PulledBefore | undefined): Promise<OnDisk> {
  const holder = liveHolder(partPath, currentBootId())
  const journaled = Journal.peek(journalPath, currentBootId())
  if (holder || journaled) return {state: 'part', bytes: journaled?.kept ?? 0, ...(holder ? {holder: holderWords(holder)} : {})}
  const leftover = leftoverAt(path, undefined, continuing)
  if (leftover) return {state: 'leftover', bytes: judgeLeftover(leftover, size).ranges.total, of: aria2Beside(path) ? 'aria2c' : 'continue'}
  const info = await lstat(path).catch(() => undefined)
  if (!info) return {state: 'nothing'}
  const pulled = before(path)
  return {state: 'file', bytes: info.size, ...(pulled ? {pulledAt: pulled.at} : {})}
}
