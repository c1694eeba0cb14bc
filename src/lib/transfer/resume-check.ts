import {open} from 'node:fs/promises'
import type {Dispatcher} from 'undici'
import {getRange} from '../net/request.js'
import type {RangeSet} from './range-set.js'

const SAMPLE = 64 * 1024

/**
 * Whether the bytes an earlier run kept are still the server's: a sample of them is fetched
 * again and compared with the part file. ETag and Last-Modified catch a changed file, but a
 * server may send neither, or keep them for new content; either way two versions must never
 * be stitched together. Resolves with where the sample that differs starts, or undefined when
 * they match or the sample could not be had (the transfer's own checks still apply).
 */
export async function keptBytesDiffer(
  dispatcher: Dispatcher,
  url: string,
  headers: Record<string, string>,
  partPath: string,
  kept: RangeSet,
  signal: AbortSignal,
): Promise<number | undefined> {
  // The end of the largest range kept: the last bytes the earlier run wrote there.
  const largest = kept.toArray().sort((a, b) => b.end - b.start - (a.end - a.start))[0]
  if (!largest) return undefined
  const start = Math.max(largest.start, largest.end - SAMPLE)
  const length = largest.end - start
  try {
    const {body: theirs} = await getRange(dispatcher, url, headers, start, largest.end, signal)
    if (!theirs) return undefined
    const ours = Buffer.alloc(length)
    const file = await open(partPath, 'r')
    try {
      await file.read(ours, 0, length, start)
    } finally {
      await file.close()
    }
    if (theirs.length !== length || theirs.equals(ours)) return undefined
    return start
  } catch {
    return undefined
  }
}
