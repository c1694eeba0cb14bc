import {INSECURE_ELSEWHERE} from '../lib/ui/flag-habits.js'
import {Flags} from '@oclif/core'
import {ExitCode, MtuneError, usageError} from '../lib/errors.js'
import {DEFAULT_CONNECTIONS} from '../lib/bench/defaults.js'
import {proxyUrls} from '../lib/net/proxy-env.js'
import {endpointUrl} from '../lib/env-settings.js'
import {MtuneCommand} from '../lib/ui/base-command.js'
import {mark} from '../lib/ui/colors.js'
import {registerUrlSecrets} from '../lib/ui/secrets.js'
import {parseSize} from '../lib/units.js'
import {MIN_CHUNK_SIZE} from '../lib/transfer/pull-types.js'

export default class Bench extends MtuneCommand {
  static override summary = 'Measure mirrors, connection counts and chunk sizes, and recommend the fastest settings.'
  static override description = `Probes every mirror (DNS, connect, TLS, first byte, one-stream throughput, a few times), then runs \
connections x chunk size on the best mirror (or each, with --all), reading into memory only. Reports the smallest \
connection count that reaches 95% of the best, the path's bandwidth-delay product against the host's TCP buffers, \
and with --disk the disk's write speed. Results are saved for doctor, tune and pull --auto.

A --mirror may be a model source: hf://ORG/NAME benchmarks the repo's largest file on the default endpoint, \
HF_ENDPOINT and each --endpoint; ollama://MODEL its model blob.

Exit codes: 0 measured, 2 bad input, 3 no mirror answered, 130 interrupted (what was measured is printed).`

  static override examples = [
    '<%= config.bin %> bench --mirror https://huggingface.co/org/model/resolve/main/model.safetensors --mirror https://hf-mirror.com/org/model/resolve/main/model.safetensors',
    '<%= config.bin %> bench --mirror hf://Qwen/Qwen2.5-7B-Instruct --endpoint https://hf-mirror.com --disk /models',
    '<%= config.bin %> bench --mirror https://mirror.example/model.gguf --connections 4,8,16 --chunk-size 4M,16M --duration 30',
  ]

  static override enableJsonFlag = true

  static override flags = {
    mirror: Flags.string({multiple: true, required: true, description: 'URL of the same large file on a mirror, or a model source (repeatable).'}),
    endpoint: Flags.string({multiple: true, description: 'With an hf:// mirror: more endpoints to compare (repeatable).'}),
    cache: Flags.string({env: 'MTUNE_CACHE', description: 'With an hf:// mirror: an mtune cache to compare against the hubs (its URL).'}),
    connections: Flags.string({description: `Connection counts to try. [default: ${DEFAULT_CONNECTIONS.join(',')}]`}),
    'chunk-size': Flags.string({description: 'Chunk sizes to try. [default: 1M,4M,16M,64M]'}),
    duration: Flags.integer({min: 1, max: 3600, default: 60, description: 'Time budget in seconds for the whole run.'}),
    'max-bytes': Flags.string({default: '4G', description: 'Most bytes to download in all.'}),
    all: Flags.boolean({description: 'Run the grid on every working mirror, not only the best.'}),
    disk: Flags.string({description: 'Also measure sequential write speed of the disk holding this directory.'}),
    insecure: Flags.boolean({description: 'With an ollama:// mirror: talk plain http to the registry.'}),
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(Bench)
    for (const url of [...flags.mirror, ...(flags.endpoint ?? []), ...proxyUrls()]) registerUrlSecrets(url)
    // A mistyped endpoint is bad input (exit 2), not one more "not measured" among the others.
    for (const e of flags.endpoint ?? []) endpointUrl(e, '--endpoint')
    // Only an hf:// mirror is listed on each endpoint: for the others they were ignored in silence.
    if (flags.endpoint?.length && !flags.mirror.some((m) => /^hf:\/\//i.test(m))) {
      throw usageError('bad-flag', `--endpoint gives more hubs to list an hf:// mirror on, and no --mirror is one: add --mirror hf://ORG/NAME, or give the endpoint's file URL as a --mirror`)
    }
    // Loaded here, not at the top: oclif imports every command to list them.
    const [{runBench}, {expandMirrors}, {systemReader}, {renderBench}] = await Promise.all([
      import('../lib/bench/run.js'),
      import('../lib/bench/targets.js'),
      import('../lib/system/reader.js'),
      import('../lib/ui/bench-output.js'),
    ])
    const list = (text: string | undefined, what: string, parse: (s: string) => number) =>
      text === undefined ? undefined : text.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
        const v = parse(s)
        const each = what === '--connections' ? 'each a count from 1 to 256, e.g. 1,4,16' : 'each a size of 64K or more, e.g. 1M,16M'
        if (!(v > 0)) throw usageError('bad-list', `invalid ${what} "${s}" in "${text}": give a comma-separated list, ${each}`)
        return v
      })
    const connections = list(flags.connections, '--connections', (s) => (/^\d+$/.test(s) && Number(s) <= 256 ? Number(s) : Number.NaN))
    const chunkSizes = list(flags['chunk-size'], '--chunk-size', (s) => {
      const bytes = parseSize(s, '--chunk-size')
      return bytes >= MIN_CHUNK_SIZE ? bytes : Number.NaN
    })
    const maxBytes = parseSize(flags['max-bytes'], '--max-bytes')
    if (maxBytes < 1024 * 1024) throw usageError('bad-size', `--max-bytes ${flags['max-bytes']} is too small: use 1M or more`)
    if (flags.disk) (await import('../lib/bench/disk.js')).checkDiskDir(flags.disk)
    const abort = new AbortController()
    // Ctrl-C ends the bench with what it measured so far (report.interrupted).
    const interrupt = this.onInterrupt(abort, () => new MtuneError('interrupted', 'interrupted before the bench could report', ExitCode.interrupted))
    try {
      const json = this.jsonEnabled()
      const {cacheEndpoints, parseCacheUrl} = await import('../lib/sources/cache-endpoints.js')
      const cache = flags.cache ? [cacheEndpoints(parseCacheUrl(flags.cache)).hf] : []
      if (flags.insecure && !flags.mirror.some((m) => /^ollama:\/\//i.test(m))) throw usageError('bad-flag', INSECURE_ELSEWHERE)
      const mirrors = await expandMirrors(flags.mirror, [...(flags.endpoint ?? []), ...cache], abort.signal, process.env, json ? undefined : (m) => process.stderr.write(`${mark.warn()} ${m}\n`), flags.insecure)
      // Passwords a mirror got from ~/.netrc are masked as those written in its URL are.
      for (const m of mirrors) registerUrlSecrets(m.url)
      const report = await runBench(
        {mirrors, connections, chunkSizes, budgetMs: flags.duration * 1000, maxBytes, all: flags.all, disk: flags.disk, signal: abort.signal, progress: json ? undefined : (m) => process.stderr.write(`${mark.info()} ${m}\n`)},
        systemReader(),
      )
      if (!json) this.log(renderBench(report, Boolean(process.stdout.isTTY)))
      if (report.interrupted) process.exitCode = ExitCode.interrupted
      else if (report.mirrors.every((m) => !m.ok)) process.exitCode = ExitCode.remote
      return report
    } finally {
      interrupt.dispose()
    }
  }
}
