import {Args, Flags, type Interfaces} from '@oclif/core'
import {setMaxListeners} from 'node:events'
import {ExitCode, MtuneError, errorMessage, usageError} from '../lib/errors.js'
import {proxyUrls} from '../lib/net/proxy-env.js'
import {shownUrl} from '../lib/net/credentials.js'
import {withNetrc} from '../lib/net/netrc.js'
import {cacheEndpoints, parseCacheUrl} from '../lib/sources/cache-endpoints.js'
import {PARALLEL_FILES, type Plan} from '../lib/sources/plan.js'
import {filesAfter, parseSource} from '../lib/sources/reference.js'
import type {PullEvents} from '../lib/transfer/engine.js'
import {defaultThreads} from '../lib/transfer/thread-count.js'
import {MtuneCommand} from '../lib/ui/base-command.js'
import type {Reporter} from '../lib/ui/progress.js'
import {mask, registerUrlSecrets} from '../lib/ui/secrets.js'
import {refuseConnectionCounts, refuseListFlags, refuseMisplacedFlags, sizesOf} from '../lib/ui/pull-flags.js'

// oclif imports every command to list them: each part loads only when this pull needs it.
const loadCore = async () => {
  const [progress, output, pullUrl] = await Promise.all([import('../lib/ui/progress.js'), import('../lib/ui/pull-output.js'), import('../lib/sources/pull-url.js')])
  return {...progress, ...output, ...pullUrl}
}
const loadModel = async () => {
  const [pullModel, held] = await Promise.all([import('../lib/sources/pull-model.js'), import('../lib/sources/held.js')])
  return {...pullModel, ...held}
}
const loadAuto = async () => {
  const [auto, decide, reader, apply, tuneOutput] = await Promise.all([
    import('../lib/auto/pull-auto.js'),
    import('../lib/auto/decide.js'),
    import('../lib/system/reader.js'),
    import('../lib/tune/apply.js'),
    import('../lib/ui/tune-output.js'),
  ])
  return {...auto, ...decide, ...reader, STATE_PATH: apply.STATE_PATH, ...tuneOutput}
}

/**
 * What a pull tells its user, through the reporter, secrets masked. --json prints nothing but its
 * document: what would have been warned goes into it (`warnings`), and --debug's lines go to stderr.
 */
function pullEvents(reporter: Reporter, json: boolean, debug: boolean): {events: PullEvents; warnings: string[]} {
  const warnings: string[] = []
  const events: PullEvents = {
    info: (m) => reporter.info(mask(m)),
    warn: (m) => {
      warnings.push(mask(m))
      reporter.warn(mask(m))
    },
    progress: (p) => reporter.progress(p),
    debug: debug ? (json ? (m) => process.stderr.write(`${mask(m)}\n`) : (m) => reporter.info(mask(m))) : undefined,
  }
  return {events, warnings}
}

export default class Pull extends MtuneCommand {
  static override summary = 'Download a file or a model fast, resumably and verified.'
  static override description = `SOURCE is an http(s) URL, hf://ORG/NAME[:QUANT][@REVISION][/PATH] (hf://datasets/... for datasets; \
:QUANT picks one GGUF variant), \
ollama://[HOST/][NAMESPACE/]MODEL[:TAG] or modelscope://OWNER/NAME[@REVISION][/PATH]; PATH (a file, a folder or a glob) \
pulls only that part of the repo, as do FILES named after the source (hf://ORG/NAME config.json model.safetensors). Models are written where their own tools \
look: the Hugging Face cache (HF_HUB_CACHE, HF_HOME), the Ollama store (OLLAMA_MODELS), the ModelScope cache \
(MODELSCOPE_CACHE), or a plain directory with --local-dir.

Downloads run over many keep-alive connections with work stealing, replace slow connections, adapt the connection count, \
and resume after any interruption (run the same command again). Every file is verified before it is put in place.

Exit codes: 0 done, 2 bad input, 3 the server refused or kept failing, 4 digest mismatch, 5 disk (space, permissions), \
130 interrupted (the same command resumes).`

  static override examples = [
    '<%= config.bin %> pull https://example.com/models/model.gguf -o /models/',
    '<%= config.bin %> pull hf://Qwen/Qwen2.5-7B-Instruct --include "*.safetensors" --include "*.json"',
    '<%= config.bin %> pull hf://bartowski/Qwen2.5-7B-Instruct-GGUF:Q4_K_M',
    '<%= config.bin %> pull hf://Qwen/Qwen2.5-7B-Instruct config.json tokenizer.json',
    '<%= config.bin %> pull ollama://llama3.2:3b',
    '<%= config.bin %> pull modelscope://qwen/Qwen2.5-7B-Instruct --local-dir ./qwen',
    '<%= config.bin %> pull https://example.com/model.bin --sha256 9f86d08... --mirror https://mirror.example.org/model.bin',
  ]

  static override enableJsonFlag = true

  static override usage = ['pull SOURCE [FILES...] [FLAGS]', 'pull -i FILE [-o DIR/] [FLAGS]']

  static override args = {
    // One variadic argument: oclif wants every argument before a variadic one required, and with
    // -i FILE there is no SOURCE. The first word is the source, the rest its FILES.
    source: Args.string({
      multiple: true,
      description: 'SOURCE [FILES...]: an http(s):// URL, hf://, ollama:// or modelscope:// reference; after hf:// and modelscope://, only these files, folders or globs of the repo (as hf download REPO FILE...)',
    }),
  }

  static override flags = {
    output: Flags.string({char: 'o', description: 'URLs: destination file, or directory (existing, or ending in /; made if missing). Default: the current directory.'}),
    'input-file': Flags.string({
      char: 'i',
      description: "A list of URLs to pull into -o DIR (as aria2c -i and wget -i read one): a URL per line, # comments, indented out=NAME and checksum=sha-256=HEX lines for the URL above; or sha256sum's HEX  URL lines.",
    }),
    'local-dir': Flags.string({description: 'hf:// and modelscope://: write a plain directory tree instead of the cache.'}),
    include: Flags.string({multiple: true, description: 'hf:// and modelscope://: only files matching this glob (repeatable).'}),
    exclude: Flags.string({multiple: true, description: 'hf:// and modelscope://: skip files matching this glob (repeatable).'}),
    endpoint: Flags.string({multiple: true, description: 'hf:// and modelscope://: the hub endpoint or mirror (default: HF_ENDPOINT / MODELSCOPE_ENDPOINT); with --auto, repeatable candidates.'}),
    auto: Flags.boolean({description: 'Check the machine, measure the candidate mirrors, pick mirror, connections and chunk size, say why, then pull.'}),
    budget: Flags.integer({min: 1, max: 600, description: 'With --auto: seconds for measuring the candidates. [default: 10]'}),
    tune: Flags.boolean({description: 'With --auto: apply the host tuning first (root; sudo mtune tune --rollback undoes it).'}),
    'public-mirrors': Flags.boolean({allowNo: true, description: 'With --auto: also try well-known public mirrors (hf-mirror.com for hf://).'}),
    insecure: Flags.boolean({description: 'ollama://: talk plain http to the registry.'}),
    verify: Flags.boolean({description: 'hf://, ollama://, modelscope://: re-hash the files already present (found by size) and pull again any that are bad.'}),
    cache: Flags.string({env: 'MTUNE_CACHE', description: 'An mtune cache (its URL, as mtune cache serve prints it) to pull through: hf://, ollama://, modelscope://, and URLs under its --origin mirrors; the origin stays the fallback. Files land where they would without it.'}),
    'dry-run': Flags.boolean({description: 'Print the plan (a model\'s files; a URL\'s size and destination, from one request of one byte) or the --auto decision, and write nothing.'}),
    connections: Flags.integer({char: 'c', min: 1, max: 256, description: 'Connections to start with; more are added while throughput grows, fewer when this machine\'s CPU is the limit. [default: 16]'}),
    'max-connections': Flags.integer({min: 1, max: 256, description: 'Most connections open at once (for a model: over all its files). [default: 64]'}),
    'chunk-size': Flags.string({description: 'How much one request asks for, e.g. 4M or 16M, as mtune bench measures it. [default: adapted to 40 first-byte waits, 0.25-3 s of a connection]'}),
    sha256: Flags.string({description: 'URLs: expected sha256 (64 hex digits); a mismatch is an error and the file is not kept.'}),
    mirror: Flags.string({multiple: true, description: 'URLs: another URL of the same file; used at the same time, dropped if it fails or differs.'}),
    'limit-rate': Flags.string({description: 'Cap on the whole download, e.g. 50M (bytes/s) or 400Mbit.'}),
    force: Flags.boolean({char: 'f', description: 'URLs: replace an existing destination file.'}),
    continue: Flags.boolean({
      exclusive: ['force'],
      description:
        "URLs: a shorter file already at the destination is another tool's download cut short (wget -c, curl -C -): keep it as the file's start and fetch the rest. mtune's own downloads, and aria2c's (FILE.aria2 beside it), resume without it.",
    }),
    quiet: Flags.boolean({char: 'q', description: 'No progress and no messages; errors only.'}),
    'stall-timeout': Flags.integer({min: 1, default: 30, description: 'Seconds without a byte before a connection is retried.'}),
    retries: Flags.integer({min: 0, default: 10, description: 'Failed attempts in a row, with no progress in between, before giving up.'}),
    threads: Flags.integer({
      min: 0,
      max: 64,
      description: 'Fetch threads sharing the connections of big files (HTTP, TLS and writes); 0: all on the main thread. [default: 2 per file pulled at once, within one per 4 cores, at most 8; none below 4 cores]',
    }),
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(Pull)
    const json = this.jsonEnabled()
    const [source, ...files] = args.source ?? []
    if (flags['input-file'] !== undefined) return this.pullList(flags['input-file'], source, flags)
    if (source === undefined) throw usageError('usage', 'missing SOURCE (a URL, hf://ORG/NAME, ollama://MODEL or modelscope://OWNER/NAME; or -i FILE, a list of URLs); see mtune pull --help')
    const parsed = parseSource(source, {insecure: flags.insecure})
    // A host's login in ~/.netrc (NETRC), as wget and aria2c use it, for a URL without its own.
    const ref = parsed.kind === 'url' ? {...parsed, url: withNetrc(parsed.url)} : parsed
    const mirrors = flags.mirror?.map((m) => withNetrc(m))
    const repoFiles = filesAfter(ref, files.length ? files : undefined, 'pull')
    // The cache for model sources; a plain URL goes through it only under one of its --origin prefixes.
    const cache = flags.cache && ref.kind !== 'url' ? parseCacheUrl(flags.cache) : undefined
    for (const url of [source, ...(ref.kind === 'url' ? [ref.url] : []), ...(mirrors ?? []), ...(flags.endpoint ?? []), ...proxyUrls()]) registerUrlSecrets(url)
    const {chunkSize, limitRate} = sizesOf(flags)
    refuseConnectionCounts(flags)
    refuseMisplacedFlags(ref.kind, flags)
    // A model pull fetches several files at once (run-plan.ts), each fed by its own threads.
    const threads = flags.threads ?? defaultThreads(undefined, ref.kind === 'url' ? 1 : PARALLEL_FILES)
    const {createReporter, progressMode, describeResult, describePlan, planJson, describeFiles, describeUrlDryRun, pullUrl, urlCacheFor} = await loadCore()
    const reporter = createReporter(json ? 'none' : progressMode(process.stderr, flags.quiet))
    const {events, warnings} = pullEvents(reporter, json, flags.debug)
    const say = !json && !flags.quiet
    const done = await this.withSignals(reporter, async (signal): Promise<object> => {
      const common = {stallTimeoutMs: flags['stall-timeout'] * 1000, maxRetries: flags.retries, maxConnections: flags['max-connections'], limitRate, threads, signal}
      if (flags.auto) {
        const {pullAuto, describeDecision, systemReader, STATE_PATH, renderResults} = await loadAuto()
        const auto = await pullAuto(
          ref,
          {
            source: ref.kind === 'url' ? shownUrl(ref.url) : [source, ...(repoFiles ?? [])].join(' '),
            mirrors: mirrors ?? [],
            include: flags.include,
            exclude: flags.exclude,
            files: repoFiles,
            localDir: flags['local-dir'],
            verify: flags.verify,
            urlCache: ref.kind === 'url' ? urlCacheFor(ref.url, flags.cache) : undefined,
            // The cache is a candidate the user chose (its hub endpoint); it gets the token, passed on to the hub.
            endpoints: [...(flags.endpoint ?? []), ...(cache && ref.kind !== 'ollama' ? [ref.kind === 'hf' ? cacheEndpoints(cache).hf : cacheEndpoints(cache).modelscope] : [])],
            publicMirrors: flags['public-mirrors'] ?? true,
            budgetMs: (flags.budget ?? 10) * 1000,
            output: flags.output,
            sha256: flags.sha256,
            force: flags.force,
            continue: flags.continue,
            tune: flags.tune,
            dryRun: flags['dry-run'],
            ...common,
            uid: process.getuid?.() ?? 0,
            onDecision: (d) => {
              if (say) for (const line of describeDecision(d)) reporter.info(line)
            },
            onTune: (t) => {
              if (say) reporter.info(renderResults(t, STATE_PATH))
            },
          },
          systemReader(),
          events,
        )
        reporter.stop()
        if (say && auto.result) this.log(describeResult(auto.result))
        if (say && auto.files && auto.plan) this.log(describeFiles(auto.plan, auto.files, auto.seconds ?? 0, flags.verify))
        return {...auto, plan: auto.plan && planJson(auto.plan)}
      }
      if (ref.kind === 'url' && flags['dry-run']) {
        const {urlDryRun} = await import('../lib/sources/url-dry-run.js')
        const plan = await urlDryRun(ref.url, {output: flags.output, sha256: flags.sha256, continue: flags.continue, cache: flags.cache, stallTimeoutMs: common.stallTimeoutMs, signal})
        if (say) reporter.info(describeUrlDryRun(plan, flags.force))
        reporter.stop()
        return plan
      }
      if (ref.kind === 'url') {
        const result = await pullUrl(ref.url, {mirrors, output: flags.output, connections: flags.connections, chunkSize, sha256: flags.sha256, force: flags.force, continue: flags.continue, cache: flags.cache, ...common}, events)
        reporter.stop()
        if (say) this.log(describeResult(result))
        return result
      }
      const {pullModel, downloadedOnDisk, beingPulled} = await loadModel()
      const showPlan = (plan: Plan) => {
        if (!say) return
        reporter.info(describePlan(plan, flags['dry-run'], downloadedOnDisk, beingPulled))
        for (const note of plan.notes) reporter.info(note)
      }
      const resolve = {endpoint: flags.endpoint?.[0], include: flags.include, exclude: flags.exclude, files: repoFiles, localDir: flags['local-dir']}
      const pulled = await pullModel(ref, {resolve, run: common, cache, dryRun: flags['dry-run'], verify: flags.verify}, events, showPlan)
      reporter.stop()
      // A dry run: the plan, and nothing fetched.
      if (!pulled.files) return {...planJson(pulled.plan), dryRun: true}
      if (say) this.log(describeFiles(pulled.plan, pulled.files, pulled.seconds, flags.verify, pulled.via === 'cache' ? shownUrl(cache!).replace(/\/$/, '') : undefined))
      return {...planJson(pulled.plan), dryRun: false, seconds: pulled.seconds, results: pulled.files, via: pulled.via}
    })
    return {...done, warnings}
  }

  /**
   * pull -i FILE: the URLs of a list into -o DIR, as one plan (several at once, one connection
   * budget, one progress line, the space for all checked first), through the cache's origins
   * where MTUNE_CACHE covers them.
   */
  private async pullList(file: string, source: string | undefined, flags: Interfaces.InferredFlags<typeof Pull.flags & typeof Pull.baseFlags>): Promise<object> {
    refuseListFlags(file, source, flags)
    const {chunkSize, limitRate} = sizesOf(flags)
    refuseConnectionCounts(flags)
    const json = this.jsonEnabled()
    const [{readText}, {parseUrlList, urlListPlan, listSizes, runUrlList}, core, {downloadedOnDisk, beingPulled}] = await Promise.all([
      import('../lib/text-file.js'),
      import('../lib/sources/url-list.js'),
      loadCore(),
      import('../lib/sources/held.js'),
    ])
    let text: string
    try {
      text = readText(file === '-' ? 0 : file)
    } catch (error) {
      throw usageError('bad-url-list', `cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? errorMessage(error)}): give the list's path, or - for standard input`)
    }
    const entries = parseUrlList(text, file === '-' ? 'standard input' : file).map((e) => ({...e, url: withNetrc(e.url)}))
    for (const e of entries) registerUrlSecrets(e.url)
    const listed = await urlListPlan(entries, file === '-' ? 'standard input' : file, flags.output ?? '.', flags.force)
    // A dry run asks each server the size of its file (one byte), as a single URL's does.
    const plan = flags['dry-run'] ? await listSizes(listed, flags['stall-timeout'] * 1000) : listed
    const reporter = core.createReporter(json ? 'none' : core.progressMode(process.stderr, flags.quiet))
    const {events, warnings} = pullEvents(reporter, json, flags.debug)
    if (!json && !flags.quiet) reporter.info(core.describePlan(plan, flags['dry-run'], downloadedOnDisk, beingPulled))
    if (!json && !flags.quiet) for (const note of plan.notes) reporter.warn(note)
    if (flags['dry-run']) {
      reporter.stop()
      return {...core.planJson(plan), dryRun: true}
    }
    const done = await this.withSignals(reporter, async (signal) => {
      const run = {maxConnections: flags['max-connections'], connections: flags.connections, chunkSize, stallTimeoutMs: flags['stall-timeout'] * 1000, maxRetries: flags.retries, limitRate, threads: flags.threads ?? defaultThreads(undefined, PARALLEL_FILES), signal, keepGoing: true}
      const cache = flags.cache ? parseCacheUrl(flags.cache) : undefined
      const {files, via, seconds} = await runUrlList(plan, cache, run, events)
      reporter.stop()
      if (!json && !flags.quiet) this.log(core.describeList(plan, files, seconds, via === 'cache' ? shownUrl(cache!).replace(/\/$/, '') : undefined))
      return {...core.planJson(plan), dryRun: false, seconds, results: files, via}
    })
    return {...done, warnings}
  }

  /** Ctrl-C and SIGTERM stop the pull cleanly (journals flushed) with 130 / 143. */
  private async withSignals<T>(reporter: Reporter, body: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const abort = new AbortController()
    // Every file and connection of a pull listens to it (and a pull that falls back from a cache, twice).
    setMaxListeners(0, abort.signal)
    // The transfer's own line, where it has one, says whether the next run resumes.
    const interrupted = (signal: NodeJS.Signals, said?: unknown) =>
      new MtuneError(
        'interrupted',
        said instanceof MtuneError && said.code === 'interrupted' ? said.message : 'interrupted: run the same command again to resume',
        signal === 'SIGTERM' ? 143 : ExitCode.interrupted,
      )
    const interrupt = this.onInterrupt(
      abort,
      (signal) => {
        reporter.stop()
        return interrupted(signal)
      },
      ['SIGINT', 'SIGTERM'],
    )
    try {
      return await body(abort.signal)
    } catch (error) {
      reporter.stop()
      const signal = interrupt.signal()
      if (signal && (abort.signal.aborted || (error instanceof MtuneError && error.exitCode === ExitCode.interrupted))) throw interrupted(signal, error)
      throw error
    } finally {
      interrupt.dispose()
    }
  }
}
