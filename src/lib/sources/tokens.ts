import {readFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'
import {registerSecret} from '../ui/secrets.js'
import {pathSetting} from '../env-settings.js'

export function hfHome(env = process.env): string {
  return pathSetting(env, 'HF_HOME') ?? join(pathSetting(env, 'XDG_CACHE_HOME') ?? join(homedir(), '.cache'), 'huggingface')
}

/**
 * As huggingface_hub's _clean_token: line breaks and surrounding blanks go. A token from a
 * Kubernetes secret or `echo > file` ends in a newline, which is no valid header value (undici
 * refuses the request) and is never part of a token.
 */
const clean = (token: string | undefined): string | undefined => token?.replace(/[\r\n]/g, '').trim() || undefined

/** The order the official client uses: HF_TOKEN, HUGGING_FACE_HUB_TOKEN, HF_TOKEN_PATH, $HF_HOME/token. */
export function hfToken(env = process.env): string | undefined {
  let token = clean(env.HF_TOKEN) ?? clean(env.HUGGING_FACE_HUB_TOKEN)
  if (!token) {
    try {
      token = clean(readFileSync(pathSetting(env, 'HF_TOKEN_PATH') ?? join(hfHome(env), 'token'), 'utf8'))
    } catch {
      token = undefined
    }
  }
  registerSecret(token)
  return token
}

export function modelscopeToken(env = process.env): string | undefined {
  const token = clean(env.MODELSCOPE_API_TOKEN)
  registerSecret(token)
  return token
}
