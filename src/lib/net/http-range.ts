/** Facts about HTTP range responses (RFC 9110 §14), kept free of I/O so they are easy to test. */

export interface ContentRange {
  start: number
  /** Inclusive, as on the wire. */
  end: number
  /** Undefined when the server sent `*`. */
  total?: number
}

export function parseContentRange(header: string | undefined): ContentRange | undefined {
  if (!header) return undefined
  const match = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(header)
  if (!match) return undefined
  const start = Number(match[1])
  const end = Number(match[2])
  if (end < start) return undefined
  return {start, end, total: match[3] === '*' ? undefined : Number(match[3])}
}

/** Total size from `Content-Range: bytes *\/len`, sent with 416. */
export function unsatisfiedLength(header: string | undefined): number | undefined {
  const match = header ? /^\s*bytes\s+\*\/(\d+)\s*$/i.exec(header) : null
  return match ? Number(match[1]) : undefined
}

export function rangeHeader(start: number, endExclusive?: number): string {
  return endExclusive === undefined ? `bytes=${start}-` : `bytes=${start}-${endExclusive - 1}`
}

export const isWeakEtag = (etag: string | undefined): boolean => Boolean(etag && /^W\//.test(etag))

/**
 * The validator for If-Range: a strong ETag, else Last-Modified. Weak ETags must not be used
 * (RFC 9110 §13.1.5); without either, a changed file can only be caught by its size.
 */
export function ifRangeValidator(identity: {etag?: string; lastModified?: string}): string | undefined {
  if (identity.etag && !isWeakEtag(identity.etag)) return identity.etag
  return identity.lastModified
}

/**
 * Whether a full (200) answer to an If-Range request is the same version of the file: then
 * the server ignored the Range header (some CDN edges do, now and then), and the file did not
 * change. Compared by strong ETag, else by Last-Modified; undefined when the answer carries
 * neither of the validators that were sent.
 */
export function sameVersion(sent: {etag?: string; lastModified?: string}, got: {etag?: string; lastModified?: string}): boolean | undefined {
  if (sent.etag && !isWeakEtag(sent.etag) && got.etag) return got.etag === sent.etag
  if (sent.lastModified && got.lastModified) return got.lastModified === sent.lastModified
  return undefined
}

/** The file name a server suggests, from Content-Disposition (filename* wins over filename). */
export function dispositionFilename(header: string | undefined): string | undefined {
  if (!header) return undefined
  const star = /filename\*\s*=\s*([^']*)'[^']*'([^;]+)/i.exec(header)
  if (star) {
    try {
      return decodeURIComponent(star[2].trim().replace(/^"|"$/g, ''))
    } catch {
      // fall through to the plain parameter
    }
  }
  const plain = /filename\s*=\s*("((?:[^"\\]|\\.)*)"|[^;]+)/i.exec(header)
  if (!plain) return undefined
  return (plain[2] !== undefined ? plain[2].replace(/\\(.)/g, '$1') : plain[1]).trim()
}

/** The last path segment of a URL, decoded: the name `curl -O` would use. */
export function urlFilename(url: URL): string | undefined {
  const last = url.pathname.split('/').filter(Boolean).pop()
  if (!last) return undefined
  try {
    return decodeURIComponent(last)
  } catch {
    return last
  }
}

/**
 * The name a download takes when the server suggests none (Content-Disposition): the URL's as
 * given, as curl -O and wget name it, unless that names no file and the redirect's does
 * (`download?os=linux` -> `tool-1.2.tar.gz`, as aria2c names it). Storage named by digest (a
 * CDN's `/<sha256>`) never names the file: a Hub's `model.safetensors` stays that.
 */
export function downloadName(given: URL, landed: URL): string | undefined {
  const asked = urlFilename(given)
  // Where a redirect led is the server's choice, not the user's.
  const final = landed.href === given.href ? asked : serverFilename(urlFilename(landed))
  if (!asked || !final) return asked ?? final
  const hasExtension = /\.[A-Za-z0-9]{1,12}$/.test(asked)
  const digest = /^(sha256[:-])?[0-9a-f]{32,}$/i.test(final)
  return hasExtension || digest ? asked : final
}

/**
 * What a name from a server must not carry to a terminal: control characters (C0, DEL and C1:
 * U+009B is a terminal's CSI) and bidirectional marks (U+202E before `fdp.exe` shows it as
 * `exe.pdf`). For String.replace only (global: a test() would keep its lastIndex).
 */
// eslint-disable-next-line no-control-regex
export const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g

/** A server-suggested name made safe to create in a directory (and to print), or undefined if nothing is left. */
export function safeFilename(name: string | undefined): string | undefined {
  if (!name) return undefined
  const base = name.split(/[/\\]/).pop() ?? ''
  const cleaned = base.replace(UNPRINTABLE, '').trim()
  if (!cleaned || cleaned === '.' || cleaned === '..' || Buffer.byteLength(cleaned) > 255) return undefined
  return cleaned
}

/**
 * A name the server chose (Content-Disposition, or where a redirect led), made safe and visible:
 * without leading dots, as browsers save it. Taken as it came, `-o ~/` and a hostile server's
 * `.bash_profile` would be code run at the next login (wget's CVE-2010-2252). A name in the URL
 * the user typed is theirs, and kept.
 */
export function serverFilename(name: string | undefined): string | undefined {
  return safeFilename(name)?.replace(/^[.\s]+/, '') || undefined
}
