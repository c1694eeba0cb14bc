/**
 * The two ends of an HTTP/1.1 exchange that the wire client (wire.ts) writes and reads itself:
 * the request head of a GET, and the response head with how its body is framed. Pure, so that
 * every odd answer a server can give is a unit test.
 */

export interface ResponseHead {
  statusCode: number
  /** Lower-case names; a repeated header's values joined with ", " (as undici's are flattened). */
  headers: Record<string, string | undefined>
  /**
   * How the body ends: after `length` bytes, or in a way the wire client leaves to undici
   * (chunked, or at the close of the connection).
   */
  body: {length: number} | {unsupported: string}
  /** Whether the connection may carry the next request once the body is read. */
  keepAlive: boolean
}

/** A response head longer than this is refused (undici's default limit is 16 KiB). */
export const MAX_HEAD = 64 * 1024

export class BadResponse extends Error {
  readonly code = 'WIRE_BAD_RESPONSE'
}

/** A header name (an RFC 9110 token) and a value that cannot split the head. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const HEADER_VALUE = /^[^\r\n\0]*$/

/** The head of `GET path` with `headers`: refuses a name or value that would split the head. */
export function requestHead(host: string, path: string, headers: Record<string, string>): string {
  let head = `GET ${path} HTTP/1.1\r\nhost: ${host}\r\n`
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase()
    if (lower === 'host' || lower === 'connection' || lower === 'content-length') continue
    if (!HEADER_NAME.test(name) || !HEADER_VALUE.test(value)) {
      throw new TypeError(`invalid request header ${JSON.stringify(name)}: a header cannot hold a line break`)
    }
    head += `${name}: ${value}\r\n`
  }
  return `${head}connection: keep-alive\r\n\r\n`
}

/**
 * Where the head ends in `bytes` (the index just past its blank line), or -1 while incomplete.
 * `from`: where to look from (the bytes before it were searched already, less 3 for a blank
 * line that straddles two reads).
 */
export function headEnd(bytes: Buffer, from = 0): number {
  const at = bytes.indexOf('\r\n\r\n', Math.max(0, from - 3), 'latin1')
  return at < 0 ? -1 : at + 4
}

/** Parse a complete response head (through its blank line). Throws BadResponse. */
export function parseHead(head: string): ResponseHead {
  const lines = head.split('\r\n')
  const status = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0])
  if (!status) throw new BadResponse(`not an HTTP/1.x status line: ${JSON.stringify(lines[0].slice(0, 80))}`)
  const minor = Number(status[1])
  const statusCode = Number(status[2])
  const headers: Record<string, string | undefined> = {}
  for (const line of lines.slice(1)) {
    if (line === '') continue
    const colon = line.indexOf(':')
    if (colon <= 0 || line[0] === ' ' || line[0] === '\t') throw new BadResponse(`malformed header line: ${JSON.stringify(line.slice(0, 80))}`)
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`
  }
  const connection = (headers.connection ?? '').toLowerCase()
  const keepAlive = minor === 1 ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection)
  return {statusCode, headers, body: framing(statusCode, headers), keepAlive}
}

function framing(statusCode: number, headers: Record<string, string | undefined>): ResponseHead['body'] {
  if (statusCode === 204 || statusCode === 304 || (statusCode >= 100 && statusCode < 200)) return {length: 0}
  if (headers['transfer-encoding'] !== undefined) return {unsupported: `Transfer-Encoding: ${headers['transfer-encoding']}`}
  const declared = headers['content-length']
  if (declared === undefined) return {unsupported: 'no Content-Length (the body ends when the connection does)'}
  // Repeated Content-Length headers are allowed when they agree (RFC 9110 8.6).
  const values = new Set(declared.split(',').map((v) => v.trim()))
  const [only] = values
  if (values.size !== 1 || !/^\d{1,16}$/.test(only)) throw new BadResponse(`invalid Content-Length: ${declared}`)
  return {length: Number(only)}
}
