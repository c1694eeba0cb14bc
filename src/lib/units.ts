import {usageError} from './errors.js'

const PREFIXES = ['', 'k', 'm', 'g', 't', 'p']

/**
 * Sizes follow curl/aria2 habits: `512K`, `64M`, `2G`, `1.5GiB`, `100MB` are binary multiples
 * (people who type 64M for a chunk mean MiB). A size is always bytes, whatever the case of its
 * b: `70gb` and `2tb` are how people type disk and model sizes, never gigabits.
 */
export function parseSize(input: string, what = 'size'): number {
  return parseQuantity(input, what, false)
}

/**
 * A rate in bytes per second; a trailing `/s` or `ps` is allowed (`10M/s`, `100Mbps`). Here a
 * lower-case b is bits, decimal, as link speeds are quoted (`100Mbit`, `100Mb`, `400mbps`).
 */
/** A size as parseSize reads it back, for a flag in a printed command: 4M, 512K, or bytes. */
export function sizeFlag(bytes: number): string {
  if (bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)}M`
  if (bytes % 1024 === 0) return `${bytes / 1024}K`
  return String(bytes)
}

/** The number a size or rate was typed with, its unit dropped: for "give a unit, e.g. 70G". */
export const numberTyped = (input: string): string => input.trim().replace(/\D+$/, '')

export function parseRate(input: string, what = 'rate'): number {
  return parseQuantity(input.trim().replace(/(\/s|ps)$/, ''), what, true)
}

function parseQuantity(input: string, what: string, rate: boolean): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgtpKMGTP]?)(i?B|ib|bits?|b)?\s*$/.exec(input)
  if (!match) {
    throw usageError('bad-size', `invalid ${what} "${input}": use a number with an optional unit, e.g. ${rate ? '10M, 100Mbit or 1.25GB/s' : '512K, 64M, 2G or 1T'}`)
  }
  const number = Number(match[1])
  const power = PREFIXES.indexOf(match[2].toLowerCase())
  const unit = match[3] ?? ''
  if (!rate && unit.startsWith('bit')) throw usageError('bad-size', `invalid ${what} "${input}": a size is in bytes, e.g. ${match[1]}${match[2].toUpperCase() || ''}`)
  const bits = rate && (unit === 'b' || unit.startsWith('bit'))
  const bytes = bits ? (number * 1000 ** power) / 8 : number * 1024 ** power
  if (!Number.isSafeInteger(Math.floor(bytes))) throw usageError('bad-size', `invalid ${what} "${input}": too large`)
  return Math.floor(bytes)
}

/**
 * A duration in milliseconds, as people type a round-trip time: `100ms`, `0.1s`, `100 ms`,
 * `1.5sec`, `250us`; a bare number is milliseconds (`ping` prints them).
 */
export function parseDurationMs(input: string, what = 'duration'): number {
  const match = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|msecs?|milliseconds?|s|secs?|seconds?|us|µs|microseconds?)?\s*$/i.exec(input)
  if (!match) throw usageError('bad-duration', `invalid ${what} "${input}": use milliseconds or a unit, e.g. 80, 80ms or 0.08s`)
  const n = Number(match[1])
  const unit = (match[2] ?? 'ms').toLowerCase()
  if (unit.startsWith('ms') || unit.startsWith('milli')) return n
  if (unit === 'us' || unit === 'µs' || unit.startsWith('micro')) return n / 1000
  return n * 1000
}

/** --rtt on every command that takes it: a round trip between 1 µs and 10 s. */
export function parseRtt(input: string): number {
  const ms = parseDurationMs(input, '--rtt')
  if (!(ms > 0 && ms <= 10_000)) throw usageError('bad-rtt', `invalid --rtt "${input}": give a round-trip time between 0 and 10 s, e.g. 80, 80ms or 0.08s`)
  return ms
}

/** --bandwidth on every command that takes it: `10Gbit`, `400Mbps`, `1.25GB/s`, `100M`. */
export function parseBandwidth(input: string): number {
  // A link is quoted in bits ("a 400G NIC", iperf's -b 10G) and a download rate in bytes (curl's
  // --limit-rate 10M): without a unit, --bandwidth could be either, eight times apart.
  const bare = /^\s*(\d+(?:\.\d+)?)\s*([kmgtpKMGTP]?)\s*$/.exec(input)
  if (bare) throw usageError('bad-rate', `invalid --bandwidth "${input}": bits or bytes? a link is quoted in bits: ${bare[1]}${bare[2].toUpperCase()}bit (or ${bare[1]}${bare[2].toUpperCase()}B/s in bytes)`)
  const bps = parseRate(input, '--bandwidth')
  if (!(bps > 0 && bps <= 1.25e12)) throw usageError('bad-rate', `invalid --bandwidth "${input}": give a rate between 1bit and 10Tbit, e.g. 10Gbit or 1.25GB/s`)
  return bps
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let index = 0
  while (Math.abs(value) >= 1024 && index < units.length - 1) {
    value /= 1024
    index++
  }
  return index === 0 ? `${value} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[index]}`
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--'
  const s = Math.round(seconds)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
}

/** How long something took: tenths under ten seconds, since a pull of 0.4 s did not take "0s". */
export function formatElapsed(seconds: number): string {
  return seconds >= 0 && seconds < 9.95 ? `${seconds.toFixed(1)}s` : formatDuration(seconds)
}

/** Link speeds as people quote them: 10 Gbit/s, 500 Mbit/s. */
export function formatBitRate(bytesPerSecond: number): string {
  const bits = bytesPerSecond * 8
  if (bits >= 1e9) return `${+(bits / 1e9).toFixed(1)} Gbit/s`
  if (bits >= 1e6) return `${+(bits / 1e6).toFixed(1)} Mbit/s`
  return `${+(bits / 1e3).toFixed(1)} kbit/s`
}

/** A list of names cut to its first few, then how many more: "a, b, c and 20 more". */
export const fewNames = (names: string[], max = 4): string => names.slice(0, max).join(', ') + (names.length > max ? ` and ${names.length - max} more` : '')
