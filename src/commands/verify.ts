import {Args, Flags} from '@oclif/core'
import {setMaxListeners} from 'node:events'
import {statOrNone} from '../lib/fs-dirs.js'
import {modelDirRecord, pulledRecordOf} from '../lib/verify/pull-record.js'
import {MtuneCommand} from '../lib/ui/base-command.js'
import {ExitCode, MtuneError, usageError} from '../lib/errors.js'
import {filesAfter, hasScheme, parseSource, sourceText, type SourceRef} from '../lib/sources/reference.js'
import type {Again} from '../lib/ui/verify-output.js'
import {INSECURE_ELSEWHERE} from '../lib/ui/flag-habits.js'

/** The commands that fix what verify finds, for the same files: the tree, revision, endpoint and globs it was given. */
function again(source: string[], ref: SourceRef | undefined, flags: {revision?: string; 'local-dir'?: string; endpoint?: string; insecure?: boolean; include?: string[]; exclude?: string[]}): Again {
  const where = [
    ...(flags['local-dir'] ? ['--local-dir', flags['local-dir']] : []),
    ...(flags.endpoint ? ['--endpoint', flags.endpoint] : []),
    ...(flags.insecure ? ['--insecure'] : []),
    ...(flags.include ?? []).flatMap((g) => ['--include', g]),
    ...(flags.exclude ?? []).flatMap((g) => ['--exclude', g]),
  ]
  // pull has no --revision: the revision goes into the source, as pull reads it.
  const pulled = flags.revision && ref && ref.kind !== 'url' && ref.kind !== 'ollama' ? [sourceText({...ref, revision: flags.revision}), ...source.slice(1)] : source
  return {verify: [...source, ...(flags.revision ? ['--revision', flags.revision] : []), ...where], pull: [...pulled, ...where]}
}

export default class Verify extends MtuneCommand {
  static override summary = 'Is the model on disk exactly what was published? Say what is not, and --repair it.'
  static override description = `SOURCE is hf://ORG/NAME[@REV][/PATH] (hf://datasets/... too), ollama://MODEL[:TAG] or modelscope://OWNER/NAME[@REV][/PATH], \
found where mtune pull (and each ecosystem's own tools) put them; or a PATH, checked against --sha256, the PATH.sha256 beside it, \
or its line in a SHA256SUMS beside it, or the sha256 mtune pull recorded when it fetched it from a URL; \
or a directory, against the SHA256SUMS in it (as sha256sum -c), or mtune pull's record of the files it put there \
(a ModelScope model pulled there with --local-dir is checked as its source). \
Hugging Face: the snapshot's links and blobs (each blob's name is its digest) and, when the hub answers, its file list; \
Ollama: the manifest and every blob it names; ModelScope: the hub's sha256s. Files are hashed on all cores.

One line per problem (corrupt, truncated, missing, dangling link, leftover partial file, interrupted pull), then a summary.
A model pulled in part (pull --include) is checked as such: files of the revision with nothing on disk are "not pulled", \
not missing, unless --include/--exclude or a PATH names the files that must be there.
--repair pulls exactly the bad, missing or interrupted files again (resumed and verified), then checks them again.

Exit codes: 0 intact (or repaired), 2 bad input, 3 the hub's listing was needed and did not come, 4 something is corrupt or missing.`

  static override examples = [
    '<%= config.bin %> verify hf://Qwen/Qwen2.5-7B-Instruct',
    '<%= config.bin %> verify ollama://llama3.1:8b --repair',
    '<%= config.bin %> verify /models/model.gguf --sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
    '<%= config.bin %> verify /models/Llama-3.1-8B-GGUF   # every file its SHA256SUMS names',
    '<%= config.bin %> verify /models/*.gguf   # each against its FILE.sha256 or SHA256SUMS line',
  ]

  static override enableJsonFlag = true
  static override args = {
    source: Args.string({required: true, description: 'hf://…, ollama://…, modelscope://…, or a file or directory PATH'}),
    files: Args.string({multiple: true, description: 'After a PATH: more PATHs (a shell glob), each against its own digest; after hf:// or modelscope://: files of the repo'}),
  }

  static override flags = {
    sha256: Flags.string({description: 'A PATH: its expected sha256 (default: PATH.sha256 beside it, else its line in a SHA256SUMS beside it, else what mtune pull recorded).'}),
    revision: Flags.string({description: 'hf:// and modelscope://: the revision to check (branch, tag or commit), instead of @REV.'}),
    'local-dir': Flags.string({description: 'hf:// and modelscope://: check a plain tree (as pull --local-dir writes it) against the hub\'s digests.'}),
    endpoint: Flags.string({description: 'hf:// and modelscope://: the hub endpoint (default: HF_ENDPOINT / MODELSCOPE_ENDPOINT).'}),
    offline: Flags.boolean({description: 'hf://: check against the disk alone (blob names are their digests), without asking the hub.'}),
    repair: Flags.boolean({description: 'Pull exactly the bad or missing files again, then check them again.'}),
    cache: Flags.string({env: 'MTUNE_CACHE', description: 'An mtune cache (its URL, or HOST:PORT): the hub\'s listing and --repair go through it, the hub staying the fallback.'}),
    insecure: Flags.boolean({description: 'ollama://: talk plain http to the registry (with --repair).'}),
    quiet: Flags.boolean({char: 'q', description: 'Only problems and errors.'}),
    include: Flags.string({multiple: true, description: 'hf:// and modelscope://: the files pulled with pull --include (repeatable); those absent are missing.'}),
    exclude: Flags.string({multiple: true, description: 'hf:// and modelscope://: the files pull --exclude left out (repeatable).'}),
    workers: Flags.integer({min: 1, max: 256, description: 'Files hashed at once. [default: the number of cores]'}),
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(Verify)
    const [{verify}, {createDispatcher}, {createReporter, progressMode}, {renderVerify}, {existsSync}, {parseCacheUrl}, {cacheCopy}, {hfCacheDir}, {modelscopeCacheDir}, {resolve}] = await Promise.all([
      import('../lib/verify/run.js'),
      import('../lib/net/dispatcher.js'),
      import('../lib/ui/progress.js'),
      import('../lib/ui/verify-output.js'),
      import('node:fs'),
      import('../lib/sources/cache-endpoints.js'),
      import('../lib/verify/store-paths.js'),
      import('../lib/sources/hf.js'),
      import('../lib/sources/modelscope.js'),
      import('node:path'),
    ])
    const isSource = hasScheme(args.source)
    // A folder of a hub's cache (`cd` into it, then `mtune verify .`) is a repo's copy: checked
    // as its source is, at the snapshot's revision, in the cache it is in.
    const copy = isSource || args.files?.length ? undefined : cacheCopy(args.source)
    // Another cache than this user's: the hub's files are looked for, and repaired, in it.
    const usual = copy?.cacheVar === 'HF_HUB_CACHE' ? hfCacheDir() : modelscopeCacheDir()
    const otherCache = copy && resolve(copy.cache) !== resolve(usual) ? `${copy.cacheVar}=${copy.cache} ` : ''
    if (copy && otherCache) process.env[copy.cacheVar] = copy.cache
    // A tree pull --local-dir put a ModelScope model into holds no record of it: mtune's own says which.
    const tree = isSource || copy || args.files?.length || !statOrNone(args.source)?.isDirectory() ? undefined : modelDirRecord(args.source)
    const ref = isSource ? parseSource(args.source, {insecure: flags.insecure}) : copy ? parseSource(copy.source) : tree ? parseSource(tree.model) : undefined
    // The snapshot's revision, not one the user gave: the fix line repeats only what was typed.
    const revision = flags.revision ?? copy?.revision ?? tree?.revision
    const localDir = flags['local-dir'] ?? (tree ? args.source : undefined)
    const endpoint = flags.endpoint ?? tree?.endpoint
    if (flags.insecure && ref?.kind !== 'ollama') throw usageError('bad-flag', INSECURE_ELSEWHERE)
    const files = ref ? filesAfter(ref, args.files, 'verify') : undefined
    const paths = ref ? [] : [args.source, ...(args.files ?? [])]
    // A file with its digest beside it, or in mtune pull's record, is checked as missing (and --repair fetches it).
    const absent = paths.find((path) => !existsSync(path) && !existsSync(`${path}.sha256`) && !pulledRecordOf(path))
    // A pull writes PATH.part and renames it when verified: no PATH yet is a pull not finished.
    if (absent !== undefined && existsSync(`${absent}.part`)) {
      const [{liveHolder, holderWords}, {currentBootId}] = await Promise.all([import('../lib/transfer/pull-lock.js'), import('../lib/transfer/journal.js')])
      const holder = liveHolder(`${absent}.part`, currentBootId())
      const how = holder
        ? `is an mtune pull of it running now (${holderWords(holder)}), which puts it in place once verified: check again once it is done`
        : 'is an mtune pull of it that was interrupted; the same mtune pull resumes it, and puts it in place once verified'
      throw new MtuneError('interrupted', `${absent} is not there yet: ${absent}.part ${how}`, ExitCode.integrity)
    }
    if (absent !== undefined) {
      throw new MtuneError('not-found', `${absent}: no such file; give a PATH or a model source (hf://, ollama://, modelscope://)`, ExitCode.usage)
    }
    if (paths.some(hasScheme)) throw usageError('extra-argument', 'one model source per verify, and no PATH beside it: run mtune verify once for each')
    if (ref && flags.sha256) throw new MtuneError('bad-flag', '--sha256 applies to a file PATH; model sources carry their own digests', ExitCode.usage)
    if (paths.length > 1 && flags.sha256) throw usageError('bad-flag', `--sha256 is one file's digest, and ${paths.length} PATHs were given: give one, or put FILE.sha256 beside each`)
    // Flags for a hub's repo, ignored in silence elsewhere: a check that is not the one asked for.
    const hub = ref?.kind === 'hf' || ref?.kind === 'modelscope'
    const what = ref ? 'an Ollama model (its source names its registry and tag)' : 'a file PATH'
    for (const flag of ['revision', 'local-dir', 'endpoint'] as const) {
      if (flags[flag] !== undefined && !hub) throw usageError('bad-flag', `--${flag} applies to an hf:// or modelscope:// repo, not to ${what}`)
    }
    if (flags.offline && ref?.kind !== 'hf') {
      throw usageError('bad-flag', `--offline applies to hf:// (its blobs are named by their digests): ${ref?.kind === 'modelscope' ? "ModelScope's cache names files by path, so the hub's digests are needed" : `${ref ? 'an Ollama model' : 'a file PATH'} is checked on disk alone anyway`}`)
    }
    if (flags.offline && flags['local-dir'] !== undefined) {
      throw usageError('bad-flag', `--offline with --local-dir: give the directory alone (mtune verify ${flags['local-dir']}), which is checked offline against the record of what was fetched into it`)
    }
    if ((flags.include || flags.exclude) && ref?.kind !== 'hf' && ref?.kind !== 'modelscope') {
      throw usageError('bad-flag', `--include and --exclude choose files of an hf:// or modelscope:// repo, not of ${ref ? 'an Ollama model (all its blobs are needed)' : 'a file PATH'}`)
    }
    if (localDir && statOrNone(localDir)?.isDirectory() === false) {
      throw usageError('bad-local-dir', `invalid --local-dir "${localDir}": it is a file; give the directory the model was pulled into`)
    }
    const json = this.jsonEnabled()
    const reporter = createReporter(json ? 'none' : progressMode(process.stderr, flags.quiet))
    const abort = new AbortController()
    setMaxListeners(0, abort.signal)
    // A repair interrupted keeps what it fetched (part files and their journals) for the next run.
    const interruptedError = () =>
      new MtuneError('interrupted', flags.repair ? 'interrupted: run the same command again to finish the repair' : 'interrupted: nothing was changed; run it again', ExitCode.interrupted)
    const interrupt = this.onInterrupt(abort, () => {
      reporter.stop()
      return interruptedError()
    })
    const dispatcher = createDispatcher({stallTimeoutMs: 30_000})
    const started = performance.now()
    try {
      const report = await verify(paths.length > 1 ? paths.join(' ') : args.source, ref, {
        sha256: flags.sha256,
        paths,
        files,
        include: flags.include,
        exclude: flags.exclude,
        revision,
        localDir,
        endpoint,
        repair: flags.repair,
        cache: flags.cache && !flags.offline && ref ? parseCacheUrl(flags.cache) : undefined,
        online: !flags.offline,
        workers: flags.workers,
        dispatcher,
        signal: abort.signal,
        events: {info: (m) => reporter.info(m), warn: (m) => reporter.warn(m), progress: (p) => reporter.progress(p)},
        onProgress: (done, total) => {
          const seconds = (performance.now() - started) / 1000
          const rate = seconds > 0 ? done / seconds : 0
          reporter.progress({size: total, done, rate, etaSeconds: rate > 0 ? (total - done) / rate : undefined, connections: flags.workers ?? 0, elapsedMs: seconds * 1000, unit: 'hashing'})
        },
      })
      reporter.stop()
      if (copy) report.notes.unshift(`${args.source} is the ${copy.cacheVar === 'HF_HUB_CACHE' ? 'Hugging Face' : 'ModelScope'} cache's copy of ${copy.source.replace(/^\w+:\/\//, '')}: checked as ${otherCache}mtune verify ${copy.source}${revision ? ` --revision ${revision}` : ''}`)
      const asTree = tree && again([tree.model], ref, {...flags, revision, 'local-dir': args.source, endpoint})
      if (tree && asTree) report.notes.unshift(`${args.source} holds ${tree.model}@${tree.revision}, which mtune pull put there: checked as mtune verify ${asTree.verify.join(' ')}`)
      const fixes = again(ref ? [args.source, ...(files ?? [])] : paths, ref, flags)
      // A cache folder or a pulled tree is verified again as it was given (the folder), but pulled as its source.
      if (copy) Object.assign(fixes, {pull: again([copy.source], ref, {...flags, revision}).pull, pullEnv: otherCache || undefined})
      if (asTree) fixes.pull = asTree.pull
      const shown = json ? '' : renderVerify(report, flags.quiet, fixes)
      // --quiet on an intact model prints nothing at all, as sha256sum --quiet does.
      if (shown) this.log(shown)
      if (!report.intact) process.exitCode = ExitCode.integrity
      return report
    } catch (error) {
      reporter.stop()
      if (abort.signal.aborted) throw interruptedError()
      throw error
    } finally {
      interrupt.dispose()
      await dispatcher.destroy().catch(() => {})
    }
  }
}
