import {MtuneCommand} from '../../lib/ui/base-command.js'
import {cacheFlags} from '../../lib/cache/flags.js'

export default class CacheServe extends MtuneCommand {
  static override summary = 'Start a pull-through cache for model hubs on nginx, so that a rack fetches each model once.'
  static override description = `Writes an nginx configuration into --dir, checks it with nginx -t, starts nginx (its pid file, logs \
and cache all under --dir; no root needed for a port of 1024 or more), waits until it answers, and prints what clients use: \
HF_ENDPOINT for Hugging Face clients, the host:port to put before Ollama model names, the ModelScope endpoint, and the \
cached URL of each --origin. Hub requests go to the hub every time with the client's own token; only the bytes behind the \
hub's redirect to its CDN are cached, in slices, one upstream fetch for all clients.

A cache already running in --dir keeps its settings, except those given here that differ (a port, an upstream, \
--max-size, --origin or --cdn-host, each of these two replacing its whole list): nginx checks them and reloads, keeping \
the cached files and the requests in flight.

Exit codes: 0 running (started, already running or reloaded), 2 bad input, 5 --dir not writable, 7 nginx missing or \
would not start (or reload).`

  static override examples = [
    '<%= config.bin %> cache serve --dir /srv/mtune-cache --listen 10.0.0.5:8080',
    '<%= config.bin %> cache serve --dir /srv/cache --listen 0.0.0.0:8080 --hf-upstream http://site-cache:8080',
  ]

  static override enableJsonFlag = true
  static override flags = cacheFlags

  async run(): Promise<unknown> {
    const {flags, metadata} = await this.parse(CacheServe)
    const [{optionsFromFlags, givenSettings}, {serve, withSystemFacts}, {renderServe}] = await Promise.all([
      import('../../lib/cache/flags.js'),
      import('../../lib/cache/serve.js'),
      import('../../lib/ui/cache-output.js'),
    ])
    const options = withSystemFacts(optionsFromFlags(flags))
    const result = await serve(options, givenSettings(flags, metadata))
    const action = result.alreadyRunning ? 'already-running' : result.reloaded ? 'reloaded' : 'started'
    const doc = {url: result.state.url, dir: result.state.dir, pid: result.pid, action, endpoints: result.state.endpoints}
    if (!this.jsonEnabled()) {
      if (result.leftover) process.stderr.write(`• ${result.leftover}\n`)
      for (const warning of [result.exposure, result.proxied, result.disk]) if (warning) process.stderr.write(`! ${warning}\n`)
      this.log(renderServe(result))
    }
    return doc
  }
}
