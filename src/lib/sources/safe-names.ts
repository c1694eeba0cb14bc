import {isAbsolute, join, relative, sep} from 'node:path'
import {ExitCode, MtuneError} from '../errors.js'
import {UNPRINTABLE} from '../net/http-range.js'

/** A name as the error shows it: quoted, and with what is unprintable escaped (JSON escapes C0 alone). */
const quoted = (name: string) => JSON.stringify(name).replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)

const unsafe = (name: string, why: string) => new MtuneError('unsafe-name', `refusing the file name ${quoted(name)} from the server: ${why}`, ExitCode.remote)

/**
 * A file name from a server's listing, checked before it becomes a path: relative, no `..`,
 * no backslashes or NUL, no over-long components. Returns it with `/` separators.
 */
export function safeRelativePath(name: string): string {
  if (typeof name !== 'string' || name.length === 0) throw unsafe(String(name), 'it is empty')
  if (name.includes('\0')) throw unsafe(name, 'it contains NUL')
  if (name.includes('\\')) throw unsafe(name, 'it contains a backslash')
  if (name.startsWith('/') || isAbsolute(name)) throw unsafe(name, 'it is an absolute path')
  const parts = name.split('/')
  if (parts.some((p) => p === '..' || p === '.' || p === '')) throw unsafe(name, 'it has an empty, "." or ".." component')
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) throw unsafe(name, 'it contains control characters')
  if (parts.some((p) => Buffer.byteLength(p) > 255) || Buffer.byteLength(name) > 4096) throw unsafe(name, 'it is too long')
  return name
}

/** Join a checked relative path under a root, and make sure it stays there. */
export function safeJoin(root: string, name: string): string {
  const path = join(root, safeRelativePath(name))
  const rel = relative(root, path)
  if (rel.startsWith('..') || isAbsolute(rel) || rel.split(sep).includes('..')) throw unsafe(name, 'it leads outside the target directory')
  return path
}

/** `sha256:` and 64 lower-case hex digits, as registries must send them. */
export function parseSha256Digest(digest: unknown): string {
  if (typeof digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(digest)) {
    throw new MtuneError('bad-digest', `refusing the digest ${JSON.stringify(digest)} from the server: expected sha256:<64 hex digits>`, ExitCode.remote)
  }
  return digest.slice('sha256:'.length)
}

export function isHex(value: unknown, length: number): value is string {
  return typeof value === 'string' && new RegExp(`^[0-9a-f]{${length}}$`).test(value)
}
