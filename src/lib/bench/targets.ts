import {createDispatcher} from '../net/dispatcher.js'
import {usageError} from '../errors.js'
import {parseSource} from '../sources/reference.js'
import {resolvePlan} from '../sources/resolve.js'
import {hfEndpoint} from '../sources/hf.js'

/**
 * --mirror values as URLs of one file: URLs as given; hf://ORG/NAME as its largest file on
 * each endpoint (the default, HF_ENDPOINT, each --endpoint); ollama:// as its model blob.
 */
export async function expandMirrors(mirrors: string[], endpoints: string[], signal?: AbortSignal, env = process.env): Promise<string[]> {
  const out: string[] = []
  const dispatcher = createDispatcher({stallTimeoutMs: 15_000})
  try {
    for (const m of mirrors) {
      const ref = parseSource(m)
      if (ref.kind === 'url') {
        out.push(ref.url)
        continue
      }
      const eps = ref.kind === 'hf' ? [...new Set(['https://huggingface.co', hfEndpoint(undefined, env), ...endpoints.map((e) => e.replace(/\/+$/, ''))])] : [undefined]
      for (const endpoint of eps) {
        const plan = await resolvePlan(ref, {endpoint}, {dispatcher, signal})
        const largest = [...plan.files].sort((a, b) => (b.size ?? 0) - (a.size ?? 0))[0]
        if (!largest) throw usageError('empty-source', `${m} has no files to benchmark`)
        out.push(largest.url)
      }
    }
  } finally {
    await dispatcher.destroy().catch(() => {})
  }
  return [...new Set(out)]
}
