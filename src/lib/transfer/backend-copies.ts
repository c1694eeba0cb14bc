import type {Dispatcher} from 'undici'
import {getRange} from '../net/request.js'
import {ifRangeValidator} from '../net/http-range.js'

/**
 * Whether answers that disagree on a file's validators carry the same bytes.
 *
 * Why: a load-balanced server whose backends hold the same file under different dates (copied
 * without keeping them; nginx's ETag is the mtime and size) answers ETag A on one connection and
 * B on the next. To If-Range that reads as a change every time, and a pull would start over until
 * it gave up, where aria2c and curl, which send no validators, get the file. A real change is
 * told apart by the bytes: the same small ranges are asked for on several connections at once
 * (so several backends), and the answers grouped by validator must be identical.
 *
 * `same`: at least two validators answered, with the same bytes at each range; `differ`: they
 * did not (a real change, still rolling out); `unknown`: one validator alone answered, or the
 * server would not say.
 */
export type Copies = {verdict: 'same' | 'differ' | 'unknown'; validators: string[]}

const SAMPLE = 64 * 1024
const AT_ONCE = 6

export async function backendCopies(dispatcher: Dispatcher, url: string, headers: Record<string, string>, size: number, signal?: AbortSignal): Promise<Copies> {
  // The start (headers, metadata: what an edit changes), the middle and the end (what an append,
  // or a copy cut short and padded, changes).
  const offsets = [...new Set([0, Math.max(0, Math.floor(size / 2) - SAMPLE), Math.max(0, size - SAMPLE)])]
  const validators = new Set<string>()
  // Places answered under two validators or more, so compared: all but one of them must be (six
  // connections can all reach one backend of a random balancer, one time in 32 with two).
  let compared = 0
  for (const start of offsets) {
    const end = Math.min(size, start + SAMPLE)
    if (end <= start) continue
    const answers = await Promise.all(Array.from({length: AT_ONCE}, () => getRange(dispatcher, url, headers, start, end, signal).catch(() => undefined)))
    const byValidator = new Map<string, Buffer>()
    for (const a of answers) {
      if (!a?.body || a.range?.total !== size) continue
      const v = ifRangeValidator({etag: a.res.headers.etag, lastModified: a.res.headers['last-modified']})
      if (v === undefined) continue
      const seen = byValidator.get(v)
      if (seen && !seen.equals(a.body)) return {verdict: 'differ', validators: [...validators, v]}
      byValidator.set(v, a.body)
      validators.add(v)
    }
    const bodies = [...byValidator.values()]
    if (bodies.some((b) => !b.equals(bodies[0]))) return {verdict: 'differ', validators: [...validators]}
    if (byValidator.size >= 2) compared++
  }
  return {verdict: compared >= Math.min(2, offsets.length) && validators.size >= 2 ? 'same' : 'unknown', validators: [...validators]}
}

/** The warning once copies are taken as one file. */
export function sameCopiesSaid(copies: Copies, digest: boolean): string {
  const check = digest ? ' and its sha256 at the end' : '; no digest was given to check it at the end (--sha256)'
  return (
    `the server answers for this file under ${copies.validators.length} ETags/Last-Modified (${copies.validators.join(', ')}) with the same bytes, as load-balanced servers whose copies differ only in their dates do: ` +
    `taking them as one file, checked by its size, a sample of the bytes kept${check}`
  )
}

/** Copies that differ while answering side by side: a rollout, which waiting out is the fix for. */
export const differentCopiesSaid = (copies: Copies) =>
  `its copies answer with other bytes under ${copies.validators.join(', ')}: a new version rolling out behind a load balancer, or backends that disagree`
