import {INSECURE_ELSEWHERE} from '../lib/ui/flag-habits.js'
import {Args, Flags} from '@oclif/core'
import {usageError} from '../lib/errors.js'
import {existsSync} from 'node:fs'
import {doctorArgs} from '../lib/doctor/args.js'
import {GROUPS, type Group} from '../lib/doctor/finding.js'
import {MtuneCommand} from '../lib/ui/base-command.js'
import {mark} from '../lib/ui/colors.js'
import {numberTyped, parseBandwidth, parseRtt, parseSize} from '../lib/units.js'

export default class Doctor extends MtuneCommand {
  static override summary = 'Check that this machine is ready for a model: disk, RAM, GPU memory, network stack, disk I/O.'
  static override description = `One line per check with a mark, and a fix for every problem. CHECK selects groups: \
${GROUPS.join(' ')} (default: all). A model may be given among them as pull takes it (a URL, hf://, ollama://, \
modelscope://, or a path on disk), the same as --model.

Exit codes: 0 when nothing fails (warnings do not fail), 1 when a check fails, 2 on bad input.`

  static override examples = [
    '<%= config.bin %> doctor --size 70G --path /models',
    '<%= config.bin %> doctor hf://Qwen/Qwen2.5-72B-Instruct',
    '<%= config.bin %> doctor disk memory --model /models/llama-3-8b',
    '<%= config.bin %> doctor network --bandwidth 10Gbit --rtt 80',
    '<%= config.bin %> doctor --json > inventory.json',
  ]

  static override enableJsonFlag = true
  static override strict = false

  static override args = {
    check: Args.string({description: `groups to check: ${GROUPS.join(', ')}; or the model (as --model)`, required: false}),
  }

  static override flags = {
    size: Flags.string({description: 'The model size, e.g. 70G.', exclusive: ['model']}),
    model: Flags.string({description: 'A URL or hf://, ollama://, modelscope:// source whose size is looked up, or a model on disk (a file or folder): what a runtime loads of it.'}),
    endpoint: Flags.string({description: 'An hf:// or modelscope:// model (SOURCE or --model): its hub endpoint (default: HF_ENDPOINT / MODELSCOPE_ENDPOINT).'}),
    path: Flags.string({description: 'Where the model will be written (default: where mtune pull would write it).'}),
    rtt: Flags.string({description: 'Round-trip time to the mirror, for the TCP buffer check: 80 (ms), 80ms or 0.08s.'}),
    bandwidth: Flags.string({description: 'Bandwidth to the mirror, e.g. 10Gbit, 400Mbps or 1.25GB/s.'}),
    verbose: Flags.boolean({char: 'v', description: 'Show every measured value and every fix.'}),
    insecure: Flags.boolean({description: 'With an ollama:// model (SOURCE or --model): talk plain http to the registry.'}),
  }

  async run(): Promise<unknown> {
    const {argv, flags} = await this.parse(Doctor)
    // Loaded here, not at the top: oclif imports every command to list them.
    const [{modelSize}, {decide, gatherFacts, tally}, {systemReader}, {renderFindings, summaryLine}] = await Promise.all([
      import('../lib/doctor/model-size.js'),
      import('../lib/doctor/run.js'),
      import('../lib/system/reader.js'),
      import('../lib/ui/doctor-output.js'),
    ])
    const {groups, model} = doctorArgs(argv as string[], {model: flags.model, size: flags.size, exists: existsSync})
    const rttMs = flags.rtt === undefined ? undefined : parseRtt(flags.rtt)
    const bandwidthBps = flags.bandwidth === undefined ? undefined : parseBandwidth(flags.bandwidth)
    if (bandwidthBps === 0) throw usageError('bad-rate', '--bandwidth must be more than 0')
    let size = flags.size ? parseSize(flags.size, '--size') : undefined
    // A size in bytes without a unit: `--size 70` passed every check for a 70 B model where 70G was meant.
    if (size !== undefined && size < 1024 * 1024) {
      throw usageError('bad-size', `--size ${flags.size} is ${size} bytes, too small for a model: give a unit, e.g. ${numberTyped(flags.size!)}G`)
    }
    let missing: number | undefined
    let loads: number | undefined
    let path = flags.path
    let note: string | undefined
    let advice: string[] = []
    if (flags.insecure && !/^ollama:\/\//i.test(model ?? '')) throw usageError('bad-flag', INSECURE_ELSEWHERE)
    if (flags.endpoint !== undefined && !/^(hf|modelscope):\/\//i.test(model ?? '')) {
      throw usageError('bad-flag', `--endpoint is the hub an hf:// or modelscope:// model is looked up on, and ${model ? `${model} is not one` : 'no model was given'}: mtune doctor hf://ORG/NAME --endpoint ${flags.endpoint}`)
    }
    if (model) {
      const m = await modelSize(model, {endpoint: flags.endpoint, insecure: flags.insecure})
      size = m.size
      missing = m.missing
      loads = m.loads
      path ??= m.path
      note = m.note
      advice = m.advice ?? []
    }
    path ??= process.cwd()
    const chosen = (groups.length ? groups : GROUPS) as Group[]
    const facts = await gatherFacts(systemReader(), {path, size, loads, missing, rttMs, bandwidthBps, groups: chosen})
    const findings = decide(facts, chosen, missing)
    const counts = tally(findings)
    process.exitCode = counts.fail > 0 ? 1 : 0
    if (!this.jsonEnabled()) {
      if (note) this.log(`${mark.info()} ${model}: ${note}; the size-based checks are skipped`)
      this.log(renderFindings(findings, flags.verbose))
      // The size checked is the whole repo's; most pulls of such a repo take far less.
      for (const a of advice) this.log(`${mark.info()} ${model}: ${a}`)
      this.log('')
      this.log(summaryLine(counts))
    }
    return {
      version: 1,
      path: facts.disk.path,
      model: model ? {source: model, size: size ?? null, loads: loads ?? size ?? null, missing: missing ?? null, note: note ?? null, advice} : null,
      size: size ?? null,
      link: facts.link,
      summary: counts,
      findings,
    }
  }
}
