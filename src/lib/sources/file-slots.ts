/**
 * Files below this size are bound by latency, not bandwidth: a request to the hub, its redirect
 * and the CDN's first byte take longer than the bytes. A dataset of thousands of them goes as
 * fast as the number of them under way (huggingface_hub runs 8 at once).
 */
export const SMALL_FILE = 8 * 1024 * 1024

/** How many small files take the place of one big one. */
const SMALL_PER_BIG = 2

/**
 * Run `run` over `files` in their order, `big` big files at once, twice as many small ones, or a
 * mix of the two. `run` must not reject, and resolves with the size the file turned out to have;
 * `stopped` ends the loop (a failure elsewhere). A file of unknown size (a list's URL, before its
 * server answers) weighs as the last one of unknown size that ended, big before any has: a list
 * of shards stays at four at once, and a list of thousands of small files, bound by their round
 * trips, goes to eight once its first ones have shown what they are.
 */
export async function runInSlots<T extends {size?: number}>(files: T[], big: number, run: (file: T) => Promise<number | undefined>, stopped: () => boolean): Promise<void> {
  let unknownWas: number | undefined
  const weight = (f: T) => {
    const size = f.size ?? unknownWas
    return size !== undefined && size < SMALL_FILE ? 1 : SMALL_PER_BIG
  }
  let free = Math.max(1, big) * SMALL_PER_BIG
  const running = new Set<Promise<void>>()
  for (let i = 0; i < files.length && !stopped(); ) {
    const file = files[i]
    const w = weight(file)
    if (w > free) {
      await Promise.race(running)
      continue
    }
    i++
    free -= w
    const done: Promise<void> = run(file)
      .then((size) => {
        if (file.size === undefined && size !== undefined) unknownWas = size
      })
      .finally(() => {
        free += w
        running.delete(done)
      })
    running.add(done)
  }
  await Promise.all(running)
}
