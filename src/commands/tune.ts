import {Flags} from '@oclif/core'
import {join} from 'node:path'
import {STATE_PATH} from '../lib/tune/apply.js'
import {MtuneCommand} from '../lib/ui/base-command.js'
import {parseBandwidth, parseRtt} from '../lib/units.js'

export default class Tune extends MtuneCommand {
  static override summary = 'Suggest, apply, verify and roll back network and disk settings for large downloads.'
  static override description = `Without --apply, prints each setting as current -> recommended, why, and the commands an admin \
would run. --apply (root) saves every original value to ${STATE_PATH} before the first write, applies, and reads each \
value back; --persist also writes /etc/sysctl.d/99-mtune.conf and a udev rule; --rollback restores the originals exactly \
and removes those files. Bandwidth and RTT come from the flags, else from the last mtune bench, else from the interface \
speed with a 100 ms RTT assumed.

Exit codes: 0 done, 1 a setting could not be applied or restored (the others still were), 2 bad input, 6 not root.`

  static override examples = [
    '<%= config.bin %> tune --bandwidth 10Gbit --rtt 80',
    'sudo <%= config.bin %> tune --bandwidth 10Gbit --rtt 80 --apply',
    'sudo <%= config.bin %> tune --apply --persist --path /models',
    'sudo <%= config.bin %> tune --rollback',
  ]

  static override enableJsonFlag = true

  static override flags = {
    bandwidth: Flags.string({description: 'Bandwidth to the mirrors, e.g. 10Gbit, 400Mbps or 1.25GB/s.'}),
    rtt: Flags.string({description: 'Round-trip time to the mirrors: 80 (ms), 80ms or 0.08s.'}),
    path: Flags.string({description: 'Where models are written: its disk gets the scheduler and read-ahead (default: the current directory).'}),
    apply: Flags.boolean({description: 'Change the running system (root); originals are saved first.'}),
    persist: Flags.boolean({description: 'Also make the settings survive a reboot (implies --apply).'}),
    rollback: Flags.boolean({description: 'Restore every saved original and remove the persisted files.', exclusive: ['apply', 'persist']}),
    only: Flags.string({options: ['network', 'io'], description: 'Only network settings, or only the disk.'}),
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(Tune)
    // Loaded here, not at the top: oclif imports every command to list them.
    const [{systemReader}, {fileWriter}, {tune}, {renderResults, renderSuggestions}] = await Promise.all([
      import('../lib/system/reader.js'),
      import('../lib/tune/apply.js'),
      import('../lib/tune/run.js'),
      import('../lib/ui/tune-output.js'),
    ])
    const rttMs = flags.rtt === undefined ? undefined : parseRtt(flags.rtt)
    const bandwidthBps = flags.bandwidth === undefined ? undefined : parseBandwidth(flags.bandwidth)
    const r = systemReader()
    const report = await tune(r, fileWriter(r), {
      path: flags.path ?? process.cwd(),
      bandwidthBps,
      rttMs,
      only: flags.only as 'network' | 'io' | undefined,
      apply: flags.apply || flags.persist,
      persist: flags.persist,
      rollback: flags.rollback,
      uid: process.getuid?.() ?? 0,
    })
    const failed = report.results.some((x) => x.status === 'failed' && report.knobs.find((k) => k.id === x.id)?.action !== 'unavailable')
    process.exitCode = failed ? 1 : 0
    if (!this.jsonEnabled()) {
      const rerun = ['mtune tune', flags.bandwidth && `--bandwidth ${flags.bandwidth}`, flags.rtt && `--rtt ${flags.rtt}`, flags.path && `--path ${flags.path}`, flags.only && `--only ${flags.only}`].filter(Boolean).join(' ')
      this.log(report.mode === 'suggest' ? renderSuggestions(report, rerun) : renderResults(report, join(r.root, STATE_PATH)))
    }
    return {version: 1, statePath: STATE_PATH, ...report}
  }
}
