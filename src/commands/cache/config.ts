import {Flags} from '@oclif/core'
import {MtuneCommand} from '../../lib/ui/base-command.js'
import {cacheFlags} from '../../lib/cache/flags.js'

export default class CacheConfig extends MtuneCommand {
  static override summary = 'Print the nginx configuration mtune cache serve would run, or a systemd unit that runs it.'
  static override description = `Takes the same flags as mtune cache serve; a cache already in --dir keeps its settings except \
those given (as serve keeps them). --write puts the configuration into --dir (with the \
folders nginx needs) instead of printing it; --systemd prints a unit that writes it and runs nginx on it, for a cache that \
survives reboots: save it as /etc/systemd/system/mtune-cache.service, then systemctl enable --now mtune-cache.

Exit codes: 0 printed or written, 2 bad input, 5 --dir not writable.`

  static override examples = [
    '<%= config.bin %> cache config --dir /srv/mtune-cache --listen 10.0.0.5:8080',
    '<%= config.bin %> cache config --dir /srv/mtune-cache --listen 10.0.0.5:8080 --systemd | sudo tee /etc/systemd/system/mtune-cache.service',
  ]

  static override flags = {
    ...cacheFlags,
    systemd: Flags.boolean({description: 'Print a systemd unit that writes the configuration and runs nginx on it.', exclusive: ['write']}),
    write: Flags.boolean({description: 'Write the configuration into --dir instead of printing it.'}),
  }

  async run(): Promise<void> {
    const {flags, metadata} = await this.parse(CacheConfig)
    const [{optionsFromFlags, givenSettings}, {withSystemFacts, stateOf}, {nginxConfig}, {paths, prepareDir, workerUser, findNginx, writeState, readState}, {systemdUnit}, {writeFileAtomic}, {mergeSettings}] = await Promise.all([
      import('../../lib/cache/flags.js'),
      import('../../lib/cache/serve.js'),
      import('../../lib/cache/config.js'),
      import('../../lib/cache/nginx.js'),
      import('../../lib/cache/systemd.js'),
      import('../../lib/fs-atomic.js'),
      import('../../lib/cache/options.js'),
    ])
    const fromFlags = withSystemFacts(optionsFromFlags(flags))
    // A cache already in --dir (serve tried it first) keeps its settings, as serve keeps them: the
    // unit for `config --dir D --systemd` must not move the rack's cache back to the defaults.
    const saved = readState(fromFlags.dir)?.settings
    const options = saved ? mergeSettings(fromFlags, saved, givenSettings(flags, metadata)) : fromFlags
    if (saved && !flags.write) process.stderr.write(`• the settings of the cache in ${options.dir}, with those given here\n`)
    if (flags.systemd) {
      this.log(systemdUnit(options, {nginx: findNginx() ?? '/usr/sbin/nginx', mtune: process.argv[1]}))
      return
    }
    if (flags.write) {
      prepareDir(options.dir, workerUser())
      writeFileAtomic(paths(options.dir).conf, nginxConfig(options))
      // The systemd unit starts nginx itself, right after this: status and serve then know
      // the cache's address, endpoints and settings as if serve had started it.
      writeState(options.dir, stateOf(options, new Date().toISOString()))
      this.log(`wrote ${paths(options.dir).conf}`)
      return
    }
    this.log(nginxConfig(options))
  }
}
