import type {Dispatcher} from 'undici'
import type {Leftover} from './adopt.js'
import type {ConnectionBudget} from './connection-budget.js'
import type {OpenPartFile} from './part-file.js'
import type {TokenBucket} from './token-bucket.js'

/** What a refusal of the destination's place tells the user to do instead. */
export interface Elsewhere {
  /** For a disk without room for the file. */
  full: string
  /** For a directory that cannot be written (or made). */
  unwritable: string
}

export const ANOTHER_OUTPUT: Elsewhere = {full: 'choose another -o', unwritable: 'choose another -o'}

export interface PullOptions {
  url: string
  mirrors?: string[]
  /** A file, or an existing directory. */
  output?: string
  /** Connections to start with. */
  connections?: number
  maxConnections?: number
  /**
   * How much one request asks for (what `mtune bench` calls the chunk size). Default: adapted
   * to 40 first-byte waits, 0.25 to 3 s of one connection's transfer (piece-policy.ts). Ranges
   * are not split below min(1 MiB, this), except the last pieces (down to a quarter of that).
   */
  chunkSize?: number
  sha256?: string
  /** Bytes per second for the whole pull. */
  limitRate?: number
  /** The --limit-rate bucket shared with other pulls running at the same time (a model's files). */
  limiter?: TokenBucket
  force?: boolean
  /**
   * A shorter file already at the destination is another tool's download cut short (wget -c,
   * curl -C -): its bytes are taken as the file's start, and checked as resumed ones are.
   */
  continue?: boolean
  /**
   * What an earlier mtune pull of the same URL recorded of the file now at `path`
   * (verify/pull-record.ts): a re-run of that pull (a script, a job at every boot) keeps a file
   * that is still what it fetched and unchanged on the server, rather than refusing it.
   */
  pulledBefore?: (path: string) => PulledBefore | undefined
  stallTimeoutMs?: number
  /** Failed attempts in a row, with no byte of progress, before giving up. */
  maxRetries?: number
  /** Sent to the URL's own origin only (a token, say); never to a CDN or a mirror. */
  headers?: Record<string, string>
  /**
   * How to put the file elsewhere, for the lines that refuse this place: default "choose another
   * -o". A model's layout is moved by its own setting (HF_HUB_CACHE, OLLAMA_MODELS, --local-dir).
   */
  elsewhere?: Elsewhere
  /**
   * What another client left of this file (huggingface_hub's `.incomplete`, Ollama's
   * `-partial`; adopt.ts): moved in as the part file when this pull has no partial download of
   * its own; aria2c's partial download in the file's own place is found by the engine. `size`
   * is the file's as its source publishes it, so that the first request asks for its first hole.
   */
  adopt?: Leftover & {size?: number}
  /** Where partial data lives; default: beside the destination, as DEST.part. */
  partPath?: string
  /** A further check of the complete part file before it is renamed into place. */
  verify?: (partPath: string, sha256: string) => Promise<void>
  /** Connections shared with other pulls running at the same time. */
  budget?: ConnectionBudget
  /** A dispatcher shared with other pulls (keep-alive connections to the same hosts). */
  dispatcher?: Dispatcher
  signal?: AbortSignal
  openPartFile?: OpenPartFile
  /**
   * Fetch threads for big files (fetch-threads.ts): 0, the default here, runs every request on
   * the main thread. Only with the engine's own kind of dispatcher (the threads make theirs
   * from the same settings and the environment's proxies): the CLI sets it.
   */
  threads?: number
  /** Files smaller than this are fetched on the main thread, threads or not (default 64 MiB). */
  threadsFrom?: number
  random?: () => number
}

/** An earlier pull of a file, as mtune recorded it (verify/pull-record.ts). */
export interface PulledBefore {
  /** The URL without user info and query. */
  url: string
  /** The whole URL's digest (previous-pull.ts urlId): what a re-run is matched by. */
  urlId?: string
  size: number
  sha256: string
  etag?: string
  lastModified?: string
  /** When (ISO 8601). */
  at: string
}

export interface Progress {
  size?: number
  done: number
  rate: number
  etaSeconds?: number
  connections: number
  elapsedMs: number
  /** Bytes this attempt wrote (not those kept from an earlier run): what a sum over files takes its rate from. */
  fetched?: number
  /** What `connections` counts, when not connections (verify: files being hashed). */
  unit?: string
}

export interface PullEvents {
  info?(message: string): void
  warn?(message: string): void
  progress?(progress: Progress): void
  /** Scheduling details for --debug. */
  debug?(message: string): void
  /**
   * Another mtune (`holder`, in words) holds this file and this pull waits for it. Given (a plan
   * of many files), it is said once per holder by the caller, and the file taken from that pull
   * goes to debug; without it, both are info lines of their own.
   */
  waiting?(holder: string | undefined, path: string): void
  /**
   * The pull's writes wait for the disk under `dir` (write-gate.ts): the disk, slower than the
   * network, sets the pace. Told each time; given (a plan of many files), it is said once per
   * plan by the caller; without it, an info line once per pull.
   */
  slowDisk?(dir: string): void
}

export interface PullResult {
  url: string
  path: string
  size: number
  sha256: string
  /** The server's validators for the file, as it answered: a re-run tells an unchanged file by them. */
  etag?: string
  lastModified?: string
  /** The digest was checked against an expected one. */
  verified: boolean
  alreadyComplete: boolean
  /**
   * Already complete because another mtune pulled the same URL to the same path while this one
   * waited for it (a script run twice, hosts sharing a filesystem): hashed here, not re-fetched.
   */
  pulledByAnother: boolean
  seconds: number
  averageRate: number
  /** Most connections open at once. */
  connections: number
  retries: number
  /** Bytes received from the network, including any that were thrown away. */
  bytesFetched: number
  /** Bytes that were already on disk from an earlier, interrupted run. */
  resumedBytes: number
  mirrors: Array<{url: string; used: boolean; bytes: number; dropped?: string}>
}


/** The smallest --chunk-size a pull (and bench's grid) takes: a request per few bytes measures the server's patience, not the path. */
export const MIN_CHUNK_SIZE = 64 * 1024

export const DEFAULTS = {connections: 16, maxConnections: 64, chunkSize: 1024 * 1024, stallTimeoutMs: 30_000, maxRetries: 10}
