/**
 * Credentials written into a URL (https://user:token@host/...), as curl, wget and aria2c take
 * them. Requests carry them as Basic authentication; what is shown or saved never does.
 */
type Headers = Record<string, string>

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
