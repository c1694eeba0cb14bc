import {homedir} from 'node:os'
import {join} from 'node:path'
import {usageError} from './errors.js'

/**
 * A setting from the environment. Unset and empty are the same (`HF_ENDPOINT=` in an env file or
 * a container spec), as Ollama and the XDG spec read their variables: an empty HF_ENDPOINT is no
 * URL, and an empty HF_HOME would put the cache under the current directory.
 */
export const setting = (env: NodeJS.ProcessEnv, name: string): string | undefined => env[name]?.trim() || undefined

/**
 * A directory or file setting read as huggingface_hub reads its own (constants.py:
 * `os.path.expandvars(os.path.expanduser(...))`): a leading `~` is the home directory and `$NAME`
 * or `${NAME}` a variable's value (one that is unset stays as written). `HF_HOME=~/hf` in an env
 * file or a container spec, where no shell expands it, otherwise made a directory named `~`
 * under the current directory.
 */
export function pathSetting(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = setting(env, name)
  if (value === undefined) return undefined
  const home = setting(env, 'HOME') ?? homedir()
  const user = value === '~' || value.startsWith('~/') ? home + value.slice(1) : value
  return user.replace(/\$(\w+)|\$\{(\w+)\}/g, (whole, bare?: string, braced?: string) => env[bare ?? braced!] ?? whole)
}

/** HF_HUB_OFFLINE as huggingface_hub reads it (1, ON, YES, TRUE, any case): its tools ask no hub. */
export const hfHubOffline = (env: NodeJS.ProcessEnv = process.env) => ['1', 'on', 'yes', 'true'].includes(setting(env, 'HF_HUB_OFFLINE')?.toLowerCase() ?? '')

/** mtune's own files under the user's cache directory (XDG_CACHE_HOME, else ~/.cache): bench results, a user's rack cache. */
export function mtuneCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(pathSetting(env, 'XDG_CACHE_HOME') ?? join(homedir(), '.cache'), 'mtune')
}

/**
 * A hub endpoint (HF_ENDPOINT, MODELSCOPE_ENDPOINT, --endpoint) as an http(s) URL without its
 * trailing slashes. A value that is not one is said as such, naming where it came from, before
 * any request: it otherwise surfaced as "unexpected error: Invalid URL".
 */
export function endpointUrl(value: string, name: string, example = 'https://hf-mirror.com'): string {
  let url: URL | undefined
  try {
    url = new URL(value)
  } catch {
    url = undefined
  }
  if (!url) throw usageError('bad-endpoint', `invalid ${name} "${value}": give the hub's URL, e.g. ${example}`)
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usageError('bad-endpoint', `invalid ${name} "${value}": use http:// or https://, e.g. ${example}`)
  return value.trim().replace(/\/+$/, '')
}
