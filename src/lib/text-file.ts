import {readFileSync} from 'node:fs'

/**
 * A text file that a person or another tool wrote (a checksum list, a list of URLs): UTF-8, or
 * UTF-16 where its byte order mark says so (Windows PowerShell 5's `>` writes UTF-16LE), the mark
 * itself dropped (Notepad and PowerShell put one before UTF-8 too). Read as plain UTF-8, the
 * first line began with an invisible character, and a list whose first digest or URL was not
 * understood was refused, or checked without it.
 */
export function readText(path: string | number): string {
  return decodeText(readFileSync(path))
}

export function decodeText(bytes: Buffer): string {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return bytes.subarray(2).toString('utf16le')
  if (bytes[0] === 0xfe && bytes[1] === 0xff) {
    const body = Buffer.from(bytes.subarray(2, 2 + ((bytes.length - 2) & ~1)))
    return body.swap16().toString('utf16le')
  }
  const text = bytes.toString('utf8')
  return text.startsWith('\uFEFF') ? text.slice(1) : text
}
