import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import type {Writer} from '../../src/lib/tune/apply.js'

/**
 * Writes the way the kernel does into a fixture tree: sysctl values read back tab-separated
 * with a newline, a scheduler file shows the choice in brackets among the others, read-only
 * keys refuse (as in containers), and `tc` keeps an interface's root qdisc in memory.
 */
export function fakeKernel(root: string, options: {readOnly?: string[]; qdisc?: string} = {}): Writer & {qdisc: string; writes: string[]} {
  const state = {qdisc: options.qdisc ?? 'fq_codel', writes: [] as string[]}
  return {
    get qdisc() {
      return state.qdisc
    },
    writes: state.writes,
    write(path, value) {
      if (options.readOnly?.includes(path)) throw Object.assign(new Error(`EROFS: read-only file system, open '${path}'`), {code: 'EROFS'})
      state.writes.push(path)
      const full = join(root, path)
      if (path.endsWith('/scheduler')) {
        const all = readFileSync(full, 'utf8').replace(/[[\]]/g, '').trim().split(/\s+/)
        if (!all.includes(value.trim())) throw Object.assign(new Error('EINVAL'), {code: 'EINVAL'})
        writeFileSync(full, all.map((s) => (s === value.trim() ? `[${s}]` : s)).join(' ') + '\n')
      } else writeFileSync(full, value.trim().split(/\s+/).join('\t') + '\n')
    },
    async run(command, args) {
      if (command !== 'tc') return undefined
      if (args[0] === 'qdisc' && args[1] === 'show') return {exitCode: 0, stdout: `qdisc ${state.qdisc} 0: root refcnt 2 limit 10240p\n`}
      if (args[0] === 'qdisc' && args[1] === 'replace') state.qdisc = args[args.length - 1]
      if (args[0] === 'qdisc' && args[1] === 'del') state.qdisc = 'fq_codel'
      return {exitCode: 0, stdout: ''}
    },
  }
}
