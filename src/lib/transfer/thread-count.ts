import {availableParallelism} from 'node:os'

/**
 * How many fetch threads a pull uses by default: from 4 cores on, one per 4 cores, at least 2
 * and at most 8, leaving the other cores to the kernel's network and disk work, the hash and
 * any server next door. None below 4 cores: on 2, two threads took 4-9% off a fat pipe's wall
 * time but cost a slow, capped CDN 4% of its throughput (146.5 against 152 MiB/s), their
 * scheduling competing for the same two cores (docs/BENCHMARKS.md has the threads rows). Its
 * own module: the pull command reads it before loading the engine.
 */
export function defaultThreads(cores = availableParallelism()): number {
  return cores < 4 ? 0 : Math.min(8, Math.max(2, Math.floor(cores / 4)))
}
