/** Tokens seen by this process, so that nothing printed (even with --debug) shows them. */
const secrets = new Set<string>()

export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 4) secrets.add(value)
}

export function mask(text: string): string {
  let out = text
  for (const s of secrets) out = out.split(s).join(`${s.slice(0, 3)}***`)
  return out
}
