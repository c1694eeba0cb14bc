import {withNetrc} from '../net/netrc.js'
import {createDispatcher} from '../net/dispatcher.js'
import {errorMessage, usageError} from '../errors.js'
import {parseSource} from '../sources/reference.js'
import {resolvePlan} from '../sources/resolve.js'
import {hfEndpoint} from '../sources/hf.js'
import {hubFileHeaders} from '../sources/hub-files.js'
import type {BenchTarget} from './probe.js'

/**
 * --mirror values as URLs of one file: URLs as given (a Hub file URL with the Hub token); hf://ORG/NAME as its largest file on
 * each endpoint (the default, HF_ENDPOINT, each --endpoint); ollama:// as its model blob.
 * A model source's file carries the hub's token, granted to the hub alone, as a pull of it
 * would: a gated or private repo is measured too, and its CDN never sees the token.
 */
export async function expandMirrors(mirrors: string[], endpoints: string[], signal?: AbortSignal, env = process.env, warn?: (message: string) => void, insecure = false): Promise<BenchTarget[]> {
  const out: BenchTarget[] = []
  const dispatcher = createDispatcher({stallTimeoutMs: 15_000})
  try {
    for (const m of mirrors) {
      const ref = parseSource(m, {insecure})
      if (ref.kind === 'url') {
        // A Hub file URL with the Hub token, as `mtune pull` sends it (hub-files.ts).
        const headers = hubFileHeaders(ref.url, env)
        // A host's login in ~/.netrc, as pull uses it.
        out.push({url: withNetrc(ref.url, env), ...(headers ? {headers} : {})})
        continue
      }
      const eps = ref.kind === 'hf' ? [...new Set(['https://huggingface.co', hfEndpoint(undefined, env), ...endpoints.map((e) => e.replace(/\/+$/, ''))])] : [undefined]
      // An endpoint that cannot list the repo (unreachable from here, say) is left out with a
      // warning; the source fails only when none can.
      let firstError: unknown
      let found = 0
      for (const endpoint of eps) {
        try {
          const plan = await resolvePlan(ref, {endpoint, env}, {dispatcher, signal})
          const largest = [...plan.files].sort((a, b) => (b.size ?? 0) - (a.size ?? 0))[0]
          if (!largest) throw usageError('empty-source', `${m} has no files to benchmark`)
          // The model is what the user named: the recommendation pulls it, from this endpoint.
          const other = endpoint !== undefined && endpoint !== hfEndpoint(undefined, env)
          out.push({url: largest.url, headers: plan.headers, pull: [m, ...(other ? ['--endpoint', endpoint] : []), ...(insecure ? ['--insecure'] : [])]})
          found++
        } catch (error) {
          if (signal?.aborted) throw error
          firstError ??= error
          if (endpoint) warn?.(`${endpoint}: ${errorMessage(error)}; not measured`)
        }
      }
      if (found === 0) throw firstError
    }
  } finally {
    await dispatcher.destroy().catch(() => {})
  }
  return out.filter((t, i) => out.findIndex((o) => o.url === t.url) === i)
}
