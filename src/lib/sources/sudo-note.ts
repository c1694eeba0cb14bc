import {setting} from '../env-settings.js'

type Store = 'hf' | 'modelscope' | 'ollama'

/** The settings that say where each ecosystem's store is: one set means the user chose it. */
const CHOSEN_BY: Record<Store, string[]> = {
  hf: ['HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_HOME'],
  modelscope: ['MODELSCOPE_CACHE'],
  ollama: ['OLLAMA_MODELS'],
}

/**
 * A note for a pull run with sudo into the default store. Why: `sudo mtune pull` (as run for
 * `--auto --tune`, whose tuning needs root) writes into root's home, where the user's own
 * programs never look: transformers or ollama then fetch the model again, and the user's cache
 * fills with root-owned files if pointed there. Nothing is said where a setting chose the store.
 */
export function sudoNote(store: Store, root: string, env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.()): string | undefined {
  const user = setting(env, 'SUDO_USER')
  if (uid !== 0 || !user || user === 'root') return undefined
  if (CHOSEN_BY[store].some((name) => setting(env, name) !== undefined)) return undefined
  return `running under sudo, so this goes into root's store (${root}), where ${user}'s programs do not look: pull as ${user} (only mtune tune --apply needs root), or set ${CHOSEN_BY[store][0]} to the store they read`
}
