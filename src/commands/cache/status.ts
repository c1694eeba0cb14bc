import {dirFlag} from '../../lib/cache/flags.js'
import {MtuneCommand} from '../../lib/ui/base-command.js'

export default class CacheStatus extends MtuneCommand {
  static override summary = 'Is the cache running, what does it serve, and how much did it save?'
  static override description = `Running or not, the endpoints clients use, disk used against --max-size, requests, the hit ratio of \
cached slices, and bytes fetched upstream against bytes served to clients (from the cache's own access log).

Exit codes: 0 running, 1 not running, 2 bad input.`

  static override enableJsonFlag = true
  static override flags = {
    dir: dirFlag('The cache directory given to mtune cache serve.'),
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(CacheStatus)
    const [{cacheStatus}, {renderStatus}] = await Promise.all([import('../../lib/cache/report.js'), import('../../lib/ui/cache-output.js')])
    const status = await cacheStatus(flags.dir)
    if (!this.jsonEnabled()) this.log(renderStatus(status))
    process.exitCode = status.running ? 0 : 1
    return status
  }
}
