import {availableParallelism} from 'node:os'
import {Worker} from 'node:worker_threads'

export interface HashJob {
  path: string
  algorithm: 'sha256' | 'git-sha1'
}

export interface HashResult {
  digest?: string
  size?: number
  /** The file could not be read (its errno code). */
  error?: string
}

/**
 * Files hashed on all cores: one worker per file at a time, as many workers as cores (or
 * files). Largest files first, so that the last ones to finish are small. `onBytes` is told as
 * bytes are hashed, for progress.
 */
export async function hashFiles(jobs: HashJob[], options: {workers?: number; sizes?: number[]; onBytes?(n: number): void; signal?: AbortSignal} = {}): Promise<HashResult[]> {
  const results: HashResult[] = new Array(jobs.length)
  if (jobs.length === 0) return results
  const order = jobs.map((_, i) => i).sort((a, b) => (options.sizes?.[b] ?? 0) - (options.sizes?.[a] ?? 0))
  const count = Math.max(1, Math.min(options.workers ?? availableParallelism(), jobs.length))
  // Fewer workers than cores (one big file, a short list): the spare cores read ahead for them.
  const readAhead = count < availableParallelism()
  const workers = Array.from({length: count}, () => new Worker(new URL('./hash-file-worker.js', import.meta.url)))
  try {
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            let current = -1
            const next = () => {
              if (options.signal?.aborted) return reject(options.signal.reason ?? new Error('aborted'))
              const index = order.shift()
              if (index === undefined) return resolve()
              current = index
              worker.postMessage({id: index, ...jobs[index], readAhead})
            }
            worker.on('message', (m: {id: number; progress?: number; digest?: string; size?: number; error?: string}) => {
              if (m.progress !== undefined) return options.onBytes?.(m.progress)
              results[m.id] = m.error ? {error: m.error} : {digest: m.digest, size: m.size}
              next()
            })
            worker.on('error', (error) => reject(new Error(`hashing ${current >= 0 ? jobs[current].path : ''} failed: ${error.message}`)))
            worker.on('exit', (code) => {
              if (order.length > 0 || results[current] === undefined) reject(new Error(`a hash worker exited (code ${code}) before its work was done`))
            })
            next()
          }),
      ),
    )
  } finally {
    await Promise.all(workers.map((w) => w.terminate()))
  }
  return results
}
