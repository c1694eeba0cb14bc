import {hfToken} from './tokens.js'
import {onHub} from './web-pages.js'

/**
 * The user's Hub token for a file URL of the Hub (`[datasets/]ORG/NAME/resolve|raw/REV/PATH` on
 * huggingface.co, hf.co or the HF_ENDPOINT mirror) pulled as a plain URL, as the Hub's own
 * clients send it: a gated or private repo answers 401 without it, and the message's "give a
 * token" would not have helped while the token was never sent. Granted to that URL's origin
 * only (credentials.ts): the CDN the Hub redirects to never sees it. Credentials written into
 * the URL win, as they are the user's choice for it.
 */
export function hubFileHeaders(url: string, env: NodeJS.ProcessEnv = process.env): Record<string, string> | undefined {
  if (!isHubFileUrl(url, env)) return undefined
  const {username, password} = new URL(url)
  if (username || password) return undefined
  const token = hfToken(env)
  return token ? {authorization: `Bearer ${token}`} : undefined
}

/** A file URL of the Hub (or the HF_ENDPOINT mirror): `[datasets/]ORG/NAME/resolve|raw/REV/PATH`. Its query (`?download=true`) changes nothing served. */
export function isHubFileUrl(url: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const hub = onHub(url, env)
  if (!hub) return false
  const parts = hub.parts[0] === 'datasets' ? hub.parts.slice(1) : hub.parts
  return parts.length >= 5 && (parts[2] === 'resolve' || parts[2] === 'raw')
}
