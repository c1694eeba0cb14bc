import {availableParallelism} from 'node:os'

/** Fetch threads per file pulled at once: enough to feed that file's hash (see below). */
const PER_FILE = 2

/**
 * How many fetch threads a pull uses by default: two per file pulled at once, within one per
 * 4 cores (at most 8), and none below 4 cores.
 *
 * - Per file: a file is done when its sha256 is, and the hash runs on one core (0.6-1 s per GiB
 *   with SHA extensions), so one file cannot go faster than about 1-1.6 GiB/s however many
 *   threads fetch it. One fetch thread moves about 1.4 GiB/s over HTTP and less over TLS: two
 *   keep the hash fed. More only cost memory: each thread is an isolate of its own, 15-30 MB,
 *   and with 4 the 2 GiB pull peaked at 248 MB against 179 with 2.
 * - A model pull fetches up to 4 files at once, so it may use up to 8, within the cores.
 * - None below 4 cores: on 2, two threads took 4-9% off a fat pipe's wall time but cost a slow,
 *   capped CDN 4% of its throughput (146.5 against 152 MiB/s), their scheduling competing for
 *   the same two cores (docs/BENCHMARKS.md has the threads rows).
 *
 * Its own module: the pull command reads it before loading the engine.
 */
export function defaultThreads(cores = availableParallelism(), files = 1): number {
  if (cores < 4) return 0
  return Math.max(PER_FILE, Math.min(8, Math.floor(cores / 4), PER_FILE * files))
}
