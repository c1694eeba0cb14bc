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
 * mix of the two. `run` must not reject; `stopped` ends the loop (a failure elsewhere).
 */
export async function runInSlots<T extends {size?: number}>(files: T[], big: number, run: (file: T) => Promise<void>, stopped: () => boolean): Promise<void> {
  const weight = (f: T) => (f.size !== undefined && f.size < SMALL_FILE ? 1 : SMALL_PER_BIG)
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
    const done: Promise<void> = run(file).finally(() => {
      free += w
      running.delete(done)
    })
    running.add(done)
  }
  await Promise.all(running)
}
