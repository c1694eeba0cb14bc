import {availableParallelism} from 'node:os'

/**
 * How many fetch threads a pull uses by default: none on small machines, where one event loop
 * is not the limit and a thread only adds cost (docs/BENCHMARKS.md, the threads rows); from 4
 * cores on, one per 4 cores, at most 8, leaving the other cores to the kernel's network and
 * disk work, the hash and the server next door. Its own module: the pull command reads it
 * before loading the engine.
 */
export function defaultThreads(cores = availableParallelism()): number {
  return Math.min(8, Math.floor(cores / 4))
}
