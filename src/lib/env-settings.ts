/**
 * A setting from the environment. Unset and empty are the same (`HF_ENDPOINT=` in an env file or
 * a container spec), as Ollama and the XDG spec read their variables: an empty HF_ENDPOINT is no
 * URL, and an empty HF_HOME would put the cache under the current directory.
 */
export const setting = (env: NodeJS.ProcessEnv, name: string): string | undefined => env[name]?.trim() || undefined
