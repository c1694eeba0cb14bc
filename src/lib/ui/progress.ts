import cliProgress from 'cli-progress'
import type {Progress} from '../transfer/engine.js'
import {formatBytes, formatDuration, formatRate} from '../units.js'
import {chalk, mark} from './colors.js'

export type ProgressMode = 'tty' | 'plain' | 'none'

export interface Reporter {
  progress(p: Progress): void
  info(message: string): void
  warn(message: string): void
  stop(): void
}

/** A TTY gets a live bar, a pipe gets a plain line every few seconds, --json/--quiet get nothing. */
export function progressMode(stream: NodeJS.WriteStream, quiet: boolean): ProgressMode {
  if (quiet) return 'none'
  return stream.isTTY ? 'tty' : 'plain'
}

export function createReporter(mode: ProgressMode, stream: NodeJS.WriteStream = process.stderr): Reporter {
  if (mode === 'tty') return new BarReporter(stream)
  if (mode === 'plain') return new LineReporter(stream, Number(process.env.MTUNE_PROGRESS_INTERVAL_MS) || 5_000)
  return {progress() {}, info() {}, warn() {}, stop() {}}
}

function summary(p: Progress): {percent: string; done: string; rate: string; left: string} {
  return {
    percent: p.size ? `${((p.done / p.size) * 100).toFixed(1)}%` : '',
    done: p.size === undefined ? formatBytes(p.done) : `${formatBytes(p.done)}/${formatBytes(p.size)}`,
    rate: formatRate(p.rate),
    left: p.etaSeconds === undefined ? '--' : formatDuration(p.etaSeconds),
  }
}

/**
 * What the pull is doing, after the rate: its connections, or once every byte is in and none is
 * open, the flush and the digest check ("connections 0" read as a stall).
 */
function activity(p: Progress, connections: (n: number) => string): string {
  if (p.unit) return p.unit
  return p.size !== undefined && p.done >= p.size && p.connections === 0 ? 'checking sha256' : connections(p.connections)
}

class BarReporter implements Reporter {
  private readonly multi: cliProgress.MultiBar
  private bar?: cliProgress.SingleBar

  constructor(stream: NodeJS.WriteStream) {
    this.multi = new cliProgress.MultiBar(
      {
        stream,
        format: `{bar} {percent} {done}  {rate}  ETA {left}  ${chalk.dim('{connections}')}`,
        barsize: 24,
        hideCursor: true,
        clearOnComplete: false,
        fps: 5,
        barCompleteChar: '█',
        barIncompleteChar: '░',
      },
      cliProgress.Presets.shades_classic,
    )
  }

  progress(p: Progress): void {
    const payload = {...summary(p), connections: activity(p, (n) => `${n} conn`)}
    const total = p.size ?? Math.max(p.done, 1)
    if (!this.bar) this.bar = this.multi.create(total, p.done, payload)
    else {
      this.bar.setTotal(total)
      this.bar.update(p.done, payload)
    }
  }

  info(message: string): void {
    this.multi.log(`${mark.info()} ${message}\n`)
  }

  warn(message: string): void {
    this.multi.log(`${mark.warn()} ${message}\n`)
  }

  stop(): void {
    this.multi.stop()
  }
}

class LineReporter implements Reporter {
  private last = 0

  constructor(private readonly stream: NodeJS.WriteStream, private readonly intervalMs: number) {}

  progress(p: Progress): void {
    const now = performance.now()
    if (now - this.last < this.intervalMs) return
    this.last = now
    const s = summary(p)
    this.stream.write(`progress ${s.percent ? s.percent + ' ' : ''}${s.done} ${s.rate} eta ${s.left} ${activity(p, (n) => `connections ${n}`)}\n`)
  }

  info(message: string): void {
    this.stream.write(`${mark.info()} ${message}\n`)
  }

  warn(message: string): void {
    this.stream.write(`${mark.warn()} ${message}\n`)
  }

  stop(): void {}
}
