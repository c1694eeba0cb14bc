import {Flags} from '@oclif/core'
import {join, resolve} from 'node:path'
import {mtuneCacheDir} from '../env-settings.js'
import {DEFAULT_LISTEN, DEFAULT_MAX_SIZE, DEFAULT_MIN_FREE, DEFAULT_UPSTREAMS, parseCdnHost, parseListen, parseMaxSize, parseMinFree, parseOrigins, parseUpstream, type CacheOptions, type SettingName} from './options.js'

/**
 * Where a cache lives when --dir is not given: the system's cache directory for root (a service),
 * the user's own otherwise; serve, config, status and stop agree on it, so `mtune cache status`
 * finds the cache `mtune cache serve` started.
 */
export function defaultCacheDir(uid = process.getuid?.() ?? 0, env = process.env): string {
  return uid === 0 ? '/var/cache/mtune' : join(mtuneCacheDir(env), 'cache')
}

/** --dir, as serve, config, status and stop take it. */
export const dirFlag = (description: string) =>
  Flags.string({default: async () => defaultCacheDir(), defaultHelp: async () => '/var/cache/mtune as root, else ~/.cache/mtune/cache', description})

/** The flags `cache serve` and `cache config` share: what the cache is. */
export const cacheFlags = {
  dir: dirFlag('Where the cache lives: nginx configuration, pid, logs and the cached files.'),
  listen: Flags.string({default: DEFAULT_LISTEN, description: 'HOST:PORT to listen on. Loopback by default; give the rack-facing address (or 0.0.0.0:PORT) to serve other hosts.'}),
  'hf-upstream': Flags.string({default: DEFAULT_UPSTREAMS.hf, description: 'The Hugging Face hub (or a mirror, or another mtune cache) behind this cache.'}),
  'ollama-upstream': Flags.string({default: DEFAULT_UPSTREAMS.ollama, description: "Ollama's registry behind this cache."}),
  'modelscope-upstream': Flags.string({default: DEFAULT_UPSTREAMS.modelscope, description: 'ModelScope behind this cache.'}),
  origin: Flags.string({multiple: true, description: 'NAME=URL: a plain file mirror, served cached at /-/origin/NAME/ (repeatable).'}),
  'max-size': Flags.string({default: DEFAULT_MAX_SIZE, description: 'Disk the cached files may take (nginx evicts the least recently used beyond it), e.g. 500G or 2T.'}),
  'min-free': Flags.string({
    default: DEFAULT_MIN_FREE,
    description: "Space to keep free on the cache's disk, whatever --max-size says (nginx evicts the least recently used files to keep it): a size such as 50G, or a share of the disk such as 5%; 0 for none.",
  }),
  'cdn-host': Flags.string({multiple: true, description: 'Another CDN domain the hubs redirect to, that this cache may fetch from (repeatable; the hubs\' known CDNs are built in).'}),
}

export interface CacheFlagValues {
  dir: string
  listen: string
  'hf-upstream': string
  'ollama-upstream': string
  'modelscope-upstream': string
  origin?: string[]
  'max-size': string
  'min-free': string
  'cdn-host'?: string[]
}

/** Flags to options; bad input is one line and exit 2, before anything is written. */
export function optionsFromFlags(f: CacheFlagValues): Omit<CacheOptions, 'resolvers' | 'caFile' | 'user' | 'disk'> {
  return {
    dir: resolve(f.dir),
    listen: parseListen(f.listen),
    upstreams: {
      hf: parseUpstream(f['hf-upstream'], '--hf-upstream'),
      ollama: parseUpstream(f['ollama-upstream'], '--ollama-upstream'),
      modelscope: parseUpstream(f['modelscope-upstream'], '--modelscope-upstream'),
    },
    origins: parseOrigins(f.origin ?? []),
    maxSize: parseMaxSize(f['max-size']),
    minFree: parseMinFree(f['min-free']),
    cdnHosts: [...new Set((f['cdn-host'] ?? []).filter((h) => h.trim()).map(parseCdnHost))],
  }
}

const SETTING_OF_FLAG: Record<string, SettingName> = {
  listen: 'listen',
  'hf-upstream': 'hf',
  'ollama-upstream': 'ollama',
  'modelscope-upstream': 'modelscope',
  origin: 'origins',
  'max-size': 'maxSize',
  'min-free': 'minFree',
  'cdn-host': 'cdnHosts',
}

/** The settings the command line names (oclif marks the flags it filled in from their defaults). */
export function givenSettings(flags: object, metadata: {flags: Record<string, {setFromDefault?: boolean} | undefined>}): Set<SettingName> {
  const given = new Set<SettingName>()
  for (const [flag, setting] of Object.entries(SETTING_OF_FLAG)) {
    if ((flags as Record<string, unknown>)[flag] !== undefined && !metadata.flags[flag]?.setFromDefault) given.add(setting)
  }
  return given
}
