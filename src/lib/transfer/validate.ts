import {usageError} from '../errors.js'

/** A download URL: absolute, http or https. */
export function parseTarget(input: string, what: string): string {
  let url: URL
  try {
    url = new URL(input)
  } catch {
    throw usageError('bad-url', `invalid ${what} "${input}": give an absolute URL such as https://host/path/model.gguf`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    const scheme = url.protocol.replace(/:$/, '')
    throw usageError('bad-scheme', `unsupported scheme "${scheme}" in ${what} "${input}": use http:// or https://`)
  }
  if (!url.hostname) throw usageError('bad-url', `invalid ${what} "${input}": it has no host`)
  return url.href
}

/** -o: a path. Standard output cannot be one: pieces arrive out of order, and a pull resumes from its file. */
export function parseOutput(output: string | undefined): string | undefined {
  if (output === '-') {
    throw usageError('bad-output', '-o - (standard output) is not supported: pieces arrive out of order and an interrupted pull resumes from its file; give a file or directory path')
  }
  return output
}

/** A line copied whole from SHA256SUMS or sha256sum's output, given as a digest: its first word is the one. */
function sha256LineHint(input: string): string | undefined {
  const line = /^\s*([0-9a-fA-F]{64})\s+\*?\S/.exec(input)
  return line ? `that is a sha256sum line; give its digest alone: --sha256 ${line[1]!.toLowerCase()}` : undefined
}

/** A sha256 given by the user (pull's and verify's --sha256): 64 hex digits, optionally prefixed `sha256:`. */
export function parseSha256(input: string): string {
  const hex = input.trim().replace(/^sha256:/i, '').toLowerCase()
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw usageError('bad-digest', `invalid sha256 "${input}": ${sha256LineHint(input) ?? 'expected 64 hexadecimal characters'}`)
  }
  return hex
}
