import {withoutUserinfo} from '../net/credentials.js'
import {sourceId} from './pull-lock.js'
import type {PulledBefore} from './pull-types.js'

/** The server's validators for a file, those it gave: what a result keeps to tell a re-run an unchanged file. */
export const validatorsOf = (file: {etag?: string; lastModified?: string}): {etag?: string; lastModified?: string} => ({
  ...(file.etag ? {etag: file.etag} : {}),
  ...(file.lastModified ? {lastModified: file.lastModified} : {}),
})

/** The URL that identifies a file: without user info (credentials.ts) and fragment, query kept. */
const identifying = (url: string): URL => {
  const u = new URL(withoutUserinfo(new URL(url)))
  u.hash = ''
  return u
}

/** A URL as a record keeps it: without user info, query and fragment (neither a password nor a signature goes to disk). */
export function bareUrl(url: string): string {
  const u = identifying(url)
  u.search = ''
  return u.href
}

/**
 * What tells one URL from another in a record, query and all (`?file=a` and `?file=b` of one
 * script are two files), without writing the query itself to disk: its digest, as the pull
 * lock's source id. A signed link signed again is another URL, as it must be taken.
 */
export const urlId = (url: string): string => sourceId(identifying(url).href)

/**
 * Pure: whether the server's file is still the one an earlier pull of the same URL fetched to
 * the same place: the same size, and the same ETag, else Last-Modified. A server that gives
 * neither, now and then, is taken at its size; one that gave a validator then and none now (or
 * the other way) cannot be told, and is not.
 */
export function unchangedSince(before: PulledBefore, now: {size?: number; etag?: string; lastModified?: string}): boolean {
  if (now.size !== before.size) return false
  if (before.etag || now.etag) return before.etag === now.etag
  if (before.lastModified || now.lastModified) return before.lastModified === now.lastModified
  return true
}
