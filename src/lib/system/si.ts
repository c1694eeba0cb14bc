/**
 * What systeminformation knows that /proc and /sys do not say everywhere: graphics controllers
 * beyond NVIDIA and AMD (Intel, Apple silicon), and memory on macOS. Loaded only when asked (it
 * costs tens of milliseconds to import); tests inject captured answers instead.
 */
export interface SiController {
  vendor?: string
  model?: string
  /** MB, as systeminformation reports it. */
  vram?: number | null
  /** Memory shared with the CPU (Apple silicon, most Intel iGPUs). */
  vramDynamic?: boolean
}

export interface SiMemory {
  total: number
  available: number
  swaptotal: number
  swapfree: number
}

export interface SiFacts {
  graphics(): Promise<SiController[] | undefined>
  mem(): Promise<SiMemory | undefined>
}

const within = <T>(p: Promise<T>, ms: number): Promise<T | undefined> =>
  Promise.race([p, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms).unref())])

export const systeminformation: SiFacts = {
  async graphics() {
    try {
      const si = await import('systeminformation')
      return (await within(si.graphics(), 3_000))?.controllers
    } catch {
      return undefined
    }
  },
  async mem() {
    try {
      const si = await import('systeminformation')
      return await within(si.mem(), 2_000)
    } catch {
      return undefined
    }
  },
}
