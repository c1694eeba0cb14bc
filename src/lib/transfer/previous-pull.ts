import {createHash} from 'node:crypto'
import type {PulledBefore} from './pull-types.js'

/** The server's validators for a file, those it gave: what a result keeps to tell a re-run an unchanged file. */
export const validatorsOf = (file: {etag?: string; lastModified?: string}): {etag?: string; lastModified?: string} => ({
  ...(file.etag ? {etag: file.etag} : {}),
  ...(file.lastModified ? {lastModified: file.lastModified} : {}),
})

/** A URL as a record keeps it: without user info, query and fragment (neither a password nor a signature goes to disk). */
export function bareUrl(url: string): string {
  const u = new URL(url)
  u.username = ''
  u.password = ''
  u.search = ''
  u.hash = ''
  return u.href
}

/**
 * What tells one URL from another in a record, query and all (`?file=a` and `?file=b` of one
 * script are two files), without writing the query itself to disk: a digest of the URL without
 * its user info and fragment. A signed link signed again is another URL, as it must be taken.
 */
export function urlId(url: string): string {
  const u = new URL(url)
  u.username = ''
  u.password = ''
  u.hash = ''
  return createHash('sha256').update(u.href).digest('hex')
}

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
