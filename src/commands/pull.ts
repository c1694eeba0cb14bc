import {Args, Flags} from '@oclif/core'
import {ExitCode, MtuneError} from '../lib/errors.js'
import {pull, type PullResult} from '../lib/transfer/engine.js'
import {MtuneCommand} from '../lib/ui/base-command.js'
import {mark} from '../lib/ui/colors.js'
import {createReporter, progressMode} from '../lib/ui/progress.js'
import {formatBytes, formatDuration, formatRate, parseRate, parseSize} from '../lib/units.js'

export default class Pull extends MtuneCommand {
  static override summary = 'Download a file fast, resumably and verified.'
  static override description = `Downloads over many keep-alive connections with work stealing, replaces slow connections, \
adapts the connection count to what the server allows, and resumes after any interruption (run the same command again). \
The file is written to PATH.part and renamed into place only when complete and verified.

Exit codes: 0 done, 2 bad input, 3 the server refused or kept failing, 4 digest mismatch, 5 disk (space, permissions), \
130 interrupted (the same command resumes).`

  static override examples = [
    '<%= config.bin %> pull https://example.com/models/model.gguf -o /models/',
    '<%= config.bin %> pull https://example.com/model.safetensors --sha256 9f86d08...  --mirror https://mirror.example.org/model.safetensors',
    '<%= config.bin %> pull https://example.com/model.bin -c 8 --max-connections 8 --limit-rate 100Mbit',
  ]

  static override enableJsonFlag = true

  static override args = {
    url: Args.string({required: true, description: 'http:// or https:// URL of the file'}),
  }

  static override flags = {
    output: Flags.string({char: 'o', description: 'Destination file, or an existing directory (default: the current directory).'}),
    connections: Flags.integer({char: 'c', min: 1, max: 256, description: 'Connections to start with; more are added while throughput grows. [default: 16]'}),
    'max-connections': Flags.integer({min: 1, max: 256, description: 'Most connections to open at once. [default: 64]'}),
    'chunk-size': Flags.string({description: 'Smallest piece a range is split into, e.g. 1M, 4M. [default: 1M]'}),
    sha256: Flags.string({description: 'Expected sha256 (64 hex digits); a mismatch is an error and the file is not kept.'}),
    mirror: Flags.string({multiple: true, description: 'Another URL of the same file; used at the same time, dropped if it fails or differs.'}),
    'limit-rate': Flags.string({description: 'Cap on the whole download, e.g. 50M (bytes/s) or 400Mbit.'}),
    force: Flags.boolean({char: 'f', description: 'Replace an existing destination file.'}),
    quiet: Flags.boolean({char: 'q', description: 'No progress and no messages; errors only.'}),
    'stall-timeout': Flags.integer({min: 1, default: 30, description: 'Seconds without a byte before a connection is retried.'}),
    retries: Flags.integer({min: 0, default: 10, description: 'Failed attempts in a row, with no progress in between, before giving up.'}),
  }

  async run(): Promise<PullResult> {
    const {args, flags} = await this.parse(Pull)
    const json = this.jsonEnabled()
    const options = {
      chunkSize: flags['chunk-size'] ? parseSize(flags['chunk-size'], '--chunk-size') : undefined,
      limitRate: flags['limit-rate'] ? parseRate(flags['limit-rate'], '--limit-rate') : undefined,
    }
    if (options.chunkSize !== undefined && options.chunkSize < 64 * 1024) {
      throw new MtuneError('bad-size', `--chunk-size ${flags['chunk-size']} is too small: use 64K or more`, ExitCode.usage)
    }
    if (options.limitRate === 0) throw new MtuneError('bad-size', '--limit-rate must be more than 0', ExitCode.usage)
    const reporter = createReporter(json ? 'none' : progressMode(process.stderr, flags.quiet))
    const abort = new AbortController()
    let signalExit: number | undefined
    const onSignal = (signal: NodeJS.Signals) => {
      signalExit = signal === 'SIGTERM' ? 143 : ExitCode.interrupted
      abort.abort()
    }
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    try {
      const result = await pull(
        {
          url: args.url,
          mirrors: flags.mirror,
          output: flags.output,
          connections: flags.connections,
          maxConnections: flags['max-connections'],
          chunkSize: options.chunkSize,
          sha256: flags.sha256,
          limitRate: options.limitRate,
          force: flags.force,
          stallTimeoutMs: flags['stall-timeout'] * 1000,
          maxRetries: flags.retries,
          signal: abort.signal,
        },
        {
          info: (m) => reporter.info(m),
          warn: (m) => reporter.warn(m),
          progress: (p) => reporter.progress(p),
          debug: flags.debug ? (m) => reporter.info(m) : undefined,
        },
      )
      reporter.stop()
      if (!json && !flags.quiet) this.log(describe(result))
      return result
    } catch (error) {
      reporter.stop()
      if (signalExit && error instanceof MtuneError && error.exitCode === ExitCode.interrupted) {
        throw new MtuneError(error.code, error.message, signalExit)
      }
      throw error
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
  }
}

function describe(r: PullResult): string {
  if (r.alreadyComplete) return `${mark.ok()} ${r.path} is already complete (${formatBytes(r.size)}, sha256 verified)`
  const lines = [
    `${mark.ok()} ${r.path}  ${formatBytes(r.size)} in ${formatDuration(r.seconds)} (${formatRate(r.averageRate)}, up to ${r.connections} connections, ${r.retries} retries)`,
    `  sha256 ${r.sha256}${r.verified ? ' (verified)' : ''}`,
  ]
  if (r.resumedBytes > 0) lines.push(`  resumed with ${formatBytes(r.resumedBytes)} already on disk`)
  return lines.join('\n')
}
