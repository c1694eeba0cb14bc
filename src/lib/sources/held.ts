import {lstatSync} from 'node:fs'
import {judgeLeftover, leftoverAt} from '../transfer/adopt.js'
import {destinationFor} from '../transfer/destination.js'
import {Journal, currentBootId} from '../transfer/journal.js'
import {liveHolder} from '../transfer/pull-lock.js'
import type {Plan, PlannedFile} from './plan.js'

/** Where a planned file's partial data lives while mtune pulls it (as run-plan gives the engine). */
export const partOf = (f: PlannedFile): string => f.partPath ?? destinationFor(f.dest).partPath

/**
 * Bytes of a planned file already on disk toward it, so that the space a pull needs is what it
 * will still write: all of it when present; else what its partial download holds. mtune's part
 * file has the file's full length from the start (sparse), so its blocks count, not its length;
 * another client's leftover counts as a pull would take it over (adopt.ts). aria2c's in the file's
 * own place is not present (file-check.ts), whatever its size.
 */
export function heldOnDisk(f: PlannedFile): number {
  if (f.present) return f.size ?? 0
  const part = lstatSync(partOf(f), {throwIfNoEntry: false})
  if (part?.isFile()) return Math.min(f.size ?? Number.POSITIVE_INFINITY, part.blocks * 512)
  // A list's file has no size before its URL answers: aria2c's records give one, and a start is one.
  const leftover = leftoverAt(f.dest, f.adopt)
  return leftover ? judgeLeftover(leftover, f.size).ranges.total : 0
}

/**
 * Bytes of a planned file not present that a pull would keep, as said to the user ("partly
 * downloaded"): mtune's journal says what was written, where the blocks would say the whole
 * file once they were reserved (reserve-space.ts); else as heldOnDisk.
 */
export function downloadedOnDisk(f: PlannedFile): number {
  if (f.present) return f.size ?? 0
  const journaled = Journal.peek(`${partOf(f)}.journal`, currentBootId())?.kept
  return journaled ?? heldOnDisk(f)
}

/** Another mtune is pulling this planned file now (its part file's lock has a live holder). */
export const beingPulled = (f: PlannedFile): boolean => !f.present && liveHolder(partOf(f), currentBootId()) !== undefined

/** What the files of a plan of known sizes still need written, in bytes. */
export const stillToWrite = (files: PlannedFile[]): number => files.reduce((sum, f) => sum + Math.max(0, (f.size ?? 0) - heldOnDisk(f)), 0)

/** The same for a whole plan; undefined when a size is unknown. */
export const planStillToWrite = (plan: Plan): number | undefined => (plan.files.some((f) => f.size === undefined) ? undefined : stillToWrite(plan.files))
