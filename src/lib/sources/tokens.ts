import {readFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'
import {registerSecret} from '../ui/secrets.js'

export function hfHome(env = process.env): string {
  return env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface')
}

/** The order the official client uses: HF_TOKEN, HUGGING_FACE_HUB_TOKEN, HF_TOKEN_PATH, $HF_HOME/token. */
export function hfToken(env = process.env): string | undefined {
  let token = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN
  if (!token) {
    try {
      token = readFileSync(env.HF_TOKEN_PATH ?? join(hfHome(env), 'token'), 'utf8').trim()
    } catch {
      token = undefined
    }
  }
  registerSecret(token || undefined)
  return token || undefined
}

export function modelscopeToken(env = process.env): string | undefined {
  const token = env.MODELSCOPE_API_TOKEN || undefined
  registerSecret(token)
  return token
}
