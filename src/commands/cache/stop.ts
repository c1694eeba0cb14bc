import {dirFlag} from '../../lib/cache/flags.js'
import {MtuneCommand} from '../../lib/ui/base-command.js'

export default class CacheStop extends MtuneCommand {
  static override summary = 'Stop the cache (requests in flight finish first); harmless when it is not running.'
  static override description = 'The cached files stay in --dir: serve again and they are served again.\n\nExit codes: 0 stopped or not running, 2 bad input.'
  static override enableJsonFlag = true
  static override flags = {
    dir: dirFlag('The cache directory given to mtune cache serve.'),
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(CacheStop)
    const [{resolve}, {endLeftoverWorkers, stopNginx, runningCaches}, {elsewhereWords}] = await Promise.all([import('node:path'), import('../../lib/cache/nginx.js'), import('../../lib/ui/cache-output.js')])
    const dir = resolve(flags.dir)
    const pid = await stopNginx(dir)
    // No master: its workers may still serve, left when it died (kill -9, the OOM killer).
    const leftover = pid ? [] : await endLeftoverWorkers(dir)
    // Nothing here: a --dir mistyped, or root's default where the cache was started elsewhere.
    const runningElsewhere = pid || leftover.length ? [] : runningCaches().filter((c) => c.dir !== dir)
    if (!this.jsonEnabled()) {
      this.log(
        pid
          ? `✓ stopped the cache in ${dir} (nginx pid ${pid})`
          : leftover.length
            ? `✓ stopped the nginx processes the cache in ${dir} left running when its master died (pids ${leftover.join(', ')})`
            : `✓ no cache is running in ${dir}: nothing to stop${elsewhereWords(runningElsewhere, 'stop')}`,
      )
    }
    return {dir, stopped: Boolean(pid) || leftover.length > 0, pid: pid ?? null, leftover, runningElsewhere}
  }
}
