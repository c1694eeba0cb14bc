import {Args, Flags} from '@oclif/core'
import {setMaxListeners} from 'node:events'
import {ExitCode, MtuneError, usageError} from '../../lib/errors.js'
import {dirFlag} from '../../lib/cache/flags.js'
import {filesAfter, parseSource} from '../../lib/sources/reference.js'
import {MtuneCommand} from '../../lib/ui/base-command.js'
import {INSECURE_ELSEWHERE} from '../../lib/ui/flag-habits.js'
import {shellWord} from '../../lib/ui/shell-words.js'

export default class CacheWarm extends MtuneCommand {
  static override summary = 'Read a model through the cache once, before the fleet pulls it: their pulls are then all hits.'
  static override description = `Resolves SOURCE as a pull through the cache would (hf://, ollama://, modelscope://, or a URL under one of \
the cache's --origin mirrors), then reads every byte of it through the cache, in the cache's slices over several \
connections, and checks each file against its published digest. Nothing is written on this host. Run it on any host that \
reaches the cache (the cache host itself included) before a rollout, so that the first servers do not wait on the internet \
and the upstream sends each byte once.

The cache is --cache (or MTUNE_CACHE), else the one running in --dir on this host.

Exit codes: 0 warmed, 2 bad input, 3 the cache or the hub refused or failed, 4 the cache serves other bytes than were \
published, 130 interrupted (nothing is lost: what was read stays cached).`

  static override examples = [
    '<%= config.bin %> cache warm hf://Qwen/Qwen2.5-7B-Instruct --cache http://10.0.0.5:8080',
    '<%= config.bin %> cache warm hf://bartowski/Qwen2.5-7B-Instruct-GGUF:Q4_K_M',
    '<%= config.bin %> cache warm ollama://llama3.2:3b',
  ]

  static override enableJsonFlag = true

  static override args = {
    source: Args.string({required: true, description: 'hf://, ollama:// or modelscope:// reference, or a URL under one of the cache\'s --origin mirrors'}),
    files: Args.string({multiple: true, description: 'hf:// and modelscope://: only these files, folders or globs of the repo'}),
  }

  static override flags = {
    cache: Flags.string({env: 'MTUNE_CACHE', description: 'The cache to warm (its URL, or HOST:PORT). Default: the cache running in --dir on this host.'}),
    dir: dirFlag('Without --cache: the directory of the cache running on this host.'),
    include: Flags.string({multiple: true, description: 'hf:// and modelscope://: only files matching this glob (repeatable).'}),
    exclude: Flags.string({multiple: true, description: 'hf:// and modelscope://: skip files matching this glob (repeatable).'}),
    connections: Flags.integer({char: 'c', min: 1, max: 64, default: 8, description: 'Slices read at once: the upstream fetches this many at a time.'}),
    insecure: Flags.boolean({description: 'ollama://: the registry is plain http.'}),
    quiet: Flags.boolean({char: 'q', description: 'No progress; the result line and errors only.'}),
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(CacheWarm)
    const ref = parseSource(args.source, {insecure: flags.insecure})
    if (flags.insecure && ref.kind !== 'ollama') throw usageError('bad-flag', INSECURE_ELSEWHERE)
    if (ref.kind === 'url' || ref.kind === 'ollama') {
      for (const flag of ['include', 'exclude'] as const) if (flags[flag]) throw usageError('bad-flag', `--${flag} applies to hf:// and modelscope:// only: ${ref.kind === 'url' ? 'a URL is one file' : 'an Ollama model is all of its blobs'}`)
    }
    const files = filesAfter(ref, args.files, 'pull')
    const [{warmSource}, {createDispatcher, closeDispatcher}, {createReporter, progressMode}, {renderWarm}, {parseCacheUrl}] = await Promise.all([
      import('../../lib/cache/warm-source.js'),
      import('../../lib/net/dispatcher.js'),
      import('../../lib/ui/progress.js'),
      import('../../lib/ui/cache-output.js'),
      import('../../lib/sources/cache-endpoints.js'),
    ])
    const cache = flags.cache ? parseCacheUrl(flags.cache) : await this.localCache(flags.dir, args.source)
    const json = this.jsonEnabled()
    const reporter = createReporter(json ? 'none' : progressMode(process.stderr, flags.quiet))
    const abort = new AbortController()
    setMaxListeners(0, abort.signal)
    const interrupted = () => new MtuneError('interrupted', 'interrupted: what was read stays cached; run it again to finish', ExitCode.interrupted)
    const interrupt = this.onInterrupt(abort, () => {
      reporter.stop()
      return interrupted()
    })
    const dispatcher = createDispatcher({stallTimeoutMs: 60_000, connections: flags.connections})
    try {
      const report = await warmSource(ref, cache, {
        include: flags.include,
        exclude: flags.exclude,
        files,
        connections: flags.connections,
        dispatcher,
        signal: abort.signal,
        events: {info: (m) => reporter.info(m), warn: (m) => reporter.warn(m), progress: (p) => reporter.progress(p)},
      })
      reporter.stop()
      if (!json) this.log(renderWarm(report))
      if (!report.intact) process.exitCode = ExitCode.integrity
      return report
    } catch (error) {
      reporter.stop()
      if (abort.signal.aborted) throw interrupted()
      throw error
    } finally {
      interrupt.dispose()
      await closeDispatcher(dispatcher)
    }
  }

  /** The cache running in DIR on this host, as this host reaches it (a wildcard listen address on loopback). */
  private async localCache(dir: string, source: string): Promise<string> {
    const [{readState, runningPid, runningCaches}, {cacheUrl}, {parseListen}, {resolve}, {elsewhereWords}] = await Promise.all([
      import('../../lib/cache/nginx.js'),
      import('../../lib/cache/config.js'),
      import('../../lib/cache/options.js'),
      import('node:path'),
      import('../../lib/ui/cache-output.js'),
    ])
    const state = readState(resolve(dir))
    if (!state || !runningPid(resolve(dir))) {
      const others = elsewhereWords(runningCaches().filter((c) => c.dir !== resolve(dir)), `warm ${shellWord(source)}`)
      throw usageError('no-cache', `no cache is running in ${resolve(dir)}: give the cache with --cache URL (or MTUNE_CACHE), or start one here with mtune cache serve${others}`)
    }
    return cacheUrl({listen: parseListen(state.listen)})
  }
}
