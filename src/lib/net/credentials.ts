/**
 * Where credentials go: the one place that decides, used by every request path (pull, model
 * sources, probes, bench, --auto). Three kinds exist:
 * - headers the caller grants to one origin (a hub token): `headersFor` sends them to that origin
 *   only, and `get()` (request.ts) drops them on any redirect that leaves it;
 * - credentials written into a URL (https://user:token@host/...), as curl, wget and aria2c take
 *   them: sent as Basic authentication to that URL's origin only, never shown or saved;
 * - a proxy's own, in HTTPS_PROXY/HTTP_PROXY, which undici's proxy agent sends to the proxy only.
 * Which endpoints are granted a hub token at all is decided in auto/candidates.ts (public mirrors
 * mtune adds are resolved `anonymous`, see sources/resolve.ts).
 */
type Headers = Record<string, string>

/** Headers that carry credentials: never sent to an origin they were not granted to. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization'])

/** The headers a request to `url` may carry: all of them for the granted origin, none of the credentials elsewhere. */
export function headersFor(url: string | URL, grantedOrigin: string, headers: Headers): Headers {
  return new URL(url).origin === grantedOrigin ? headers : withoutCredentials(headers)
}

export function withoutCredentials(headers: Headers): Headers {
  const out: Headers = {}
  for (const [name, value] of Object.entries(headers)) if (!CREDENTIAL_HEADERS.has(name.toLowerCase())) out[name] = value
  return out
}

/**
 * Basic authentication for requests to a URL with credentials, unless an Authorization header
 * is given. A redirect within the same origin keeps them (nextHop); one to elsewhere carries none.
 */
export function withUserinfo(url: URL, headers: Headers): Headers {
  if (!url.username && !url.password) return headers
  if (Object.keys(headers).some((name) => name.toLowerCase() === 'authorization')) return headers
  const pair = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`
  return {...headers, authorization: `Basic ${Buffer.from(pair).toString('base64')}`}
}

/** Where a redirect leads; credentials in the URL go along within the same origin, as curl does. */
export function nextHop(current: URL, location: string): URL {
  const next = new URL(location, current)
  if (next.origin === current.origin && !next.username && !next.password) {
    next.username = current.username
    next.password = current.password
  }
  return next
}

/** A URL as shown and saved: without credentials, which only requests carry. */
export const shownUrl = (url: string): string => withoutUserinfo(new URL(url)).href

/** The URL to send: user info goes in a header (withUserinfo), never on the wire. */
export function withoutUserinfo(url: URL): URL {
  if (!url.username && !url.password) return url
  const bare = new URL(url)
  bare.username = ''
  bare.password = ''
  return bare
}
