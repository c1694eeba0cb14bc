/** Tokens seen by this process, so that nothing printed (even with --debug) shows them. */
const secrets = new Set<string>()

export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 4) secrets.add(value)
}

/** The credentials written into a URL (https://user:token@host/): the token, or a lone user name, which is often a token too. */
export function registerUrlSecrets(url: string): void {
  try {
    const {username, password} = new URL(url)
    registerSecret(decodeURIComponent(password || username))
  } catch {
    // Not a URL: the parser says so in its own words.
  }
}

export function mask(text: string): string {
  let out = text
  for (const s of secrets) out = out.split(s).join(`${s.slice(0, 3)}***`)
  return out
}
