import {readFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'

/**
 * ~/.netrc (or the file NETRC names), as wget, aria2c, curl -n and Python's requests read it: a
 * login and password per host, for mirrors behind Basic authentication. A URL pulled or
 * benchmarked without credentials of its own gets its host's, written into it, so that the one
 * credential policy (credentials.ts: that origin only, never shown or saved) applies to them.
 */
export interface NetrcLogin {
  login: string
  password: string
}

export interface Netrc {
  machines: Map<string, NetrcLogin>
  default?: NetrcLogin
}

/** Tokens as curl reads them: blanks between, "quoted" with \\ escapes, # to the end of the line. */
function tokens(text: string): string[] {
  const out: string[] = []
  let i = 0
  while (i < text.length) {
    const c = text[i]!
    if (/\s/.test(c)) i++
    else if (c === '#') while (i < text.length && text[i] !== '\n') i++
    else if (c === '"') {
      let token = ''
      for (i++; i < text.length && text[i] !== '"'; i++) token += text[i] === '\\' && i + 1 < text.length ? text[++i] : text[i]
      out.push(token)
      i++
    } else {
      const start = i
      while (i < text.length && !/\s/.test(text[i]!)) i++
      out.push(text.slice(start, i))
    }
    // A macro's body runs to the first empty line: not tokens.
    if (out[out.length - 2] === 'macdef') {
      const end = text.indexOf('\n\n', i)
      i = end < 0 ? text.length : end + 2
      out.length -= 2
    }
  }
  return out
}

/** Pure: the entries of a netrc file; the first for a host wins, as in curl and wget. */
export function parseNetrc(text: string): Netrc {
  const netrc: Netrc = {machines: new Map()}
  const t = tokens(text)
  let current: {host?: string; login?: string; password?: string} | undefined
  const close = () => {
    if (!current || current.password === undefined) return
    const entry = {login: current.login ?? '', password: current.password}
    if (current.host === undefined) netrc.default ??= entry
    else if (!netrc.machines.has(current.host.toLowerCase())) netrc.machines.set(current.host.toLowerCase(), entry)
  }
  for (let i = 0; i < t.length; i++) {
    const word = t[i]
    if (word === 'machine' || word === 'default') {
      close()
      current = word === 'machine' ? {host: t[++i]} : {}
    } else if (current && (word === 'login' || word === 'password' || word === 'account')) {
      const value = t[++i]
      if (word === 'login') current.login = value
      else if (word === 'password') current.password = value
    }
  }
  close()
  return netrc
}

export const netrcPath = (env: NodeJS.ProcessEnv = process.env): string => env.NETRC || join(env.HOME || homedir(), '.netrc')

let cached: {path: string; netrc: Netrc | undefined} | undefined

function readNetrc(env: NodeJS.ProcessEnv): Netrc | undefined {
  const path = netrcPath(env)
  if (cached?.path !== path) {
    let text: string | undefined
    try {
      text = readFileSync(path, 'utf8')
    } catch {
      // None, or unreadable: no credentials from it, as with the other tools.
    }
    cached = {path, netrc: text === undefined ? undefined : parseNetrc(text)}
  }
  return cached.netrc
}

/**
 * The URL with its host's netrc login, when it carries none of its own (or only a user name that
 * the entry's login matches, whose password is then added, as curl does). http(s) only.
 */
export function withNetrc(url: string, env: NodeJS.ProcessEnv = process.env): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return url
  }
  if ((parsed.protocol !== 'https:' && parsed.protocol !== 'http:') || parsed.password) return url
  const netrc = readNetrc(env)
  const entry = netrc?.machines.get(parsed.hostname.replace(/^\[|\]$/g, '').toLowerCase()) ?? netrc?.default
  if (!entry) return url
  const user = decodeURIComponent(parsed.username)
  if (user && user !== entry.login) return url
  parsed.username = encodeURIComponent(entry.login)
  parsed.password = encodeURIComponent(entry.password)
  return parsed.href
}
