import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import type {Writer} from '../../src/lib/tune/apply.js'

interface Qdiscs {
  root: string
  children: string[]
}

/**
 * Writes the way the kernel does into a fixture tree: sysctl values read back tab-separated
 * with a newline, a scheduler file shows the choice in brackets among the others, read-only
 * keys refuse (as in containers), and `tc` keeps an interface's qdiscs in memory.
 *
 * `queues` > 1 is a multi-queue NIC: its root is `mq` with one child per queue, each created
 * with net.core.default_qdisc (read from the tree) whenever mq is (re)attached, as the kernel
 * does. `fq: false` is a kernel without sch_fq: default_qdisc=fq and `tc ... fq` are refused.
 */
export function fakeKernel(
  root: string,
  options: {readOnly?: string[]; qdisc?: string; queues?: number; childQdisc?: string; fq?: boolean} = {},
): Writer & {qdisc: string; children: string[]; writes: string[]; tcCalls: string[][]} {
  const queues = options.queues ?? 1
  const defaultQdisc = () => {
    try {
      return readFileSync(join(root, '/proc/sys/net/core/default_qdisc'), 'utf8').trim() || 'pfifo_fast'
    } catch {
      return 'pfifo_fast'
    }
  }
  const tree: Qdiscs =
    queues > 1 ? {root: 'mq', children: Array.from({length: queues}, () => options.childQdisc ?? 'fq_codel')} : {root: options.qdisc ?? 'fq_codel', children: []}
  const attachDefault = () => {
    if (queues > 1) Object.assign(tree, {root: 'mq', children: Array.from({length: queues}, defaultQdisc)})
    else Object.assign(tree, {root: defaultQdisc(), children: []})
  }
  const state = {writes: [] as string[], tcCalls: [] as string[][]}
  const unknown = (kind: string) => kind === 'fq' && options.fq === false
  const show = () =>
    [
      `qdisc ${tree.root} ${tree.root === 'mq' ? '0' : '8001'}: root refcnt 2 limit 10240p`,
      ...tree.children.map((kind, i) => `qdisc ${kind} 0: parent :${(i + 1).toString(16)} limit 10240p flows 1024`),
    ].join('\n') + '\n'
  return {
    get qdisc() {
      return tree.root
    },
    get children() {
      return [...tree.children]
    },
    writes: state.writes,
    tcCalls: state.tcCalls,
    write(path, value) {
      if (options.readOnly?.includes(path)) throw Object.assign(new Error(`EROFS: read-only file system, open '${path}'`), {code: 'EROFS'})
      if (path.endsWith('/default_qdisc') && unknown(value.trim())) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), {code: 'ENOENT'})
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
      if (args[0] === '-V') return {exitCode: 0, stdout: 'tc utility, iproute2-6.1.0'}
      if (args[0] !== 'qdisc') return {exitCode: 1, stdout: ''}
      const verb = args[1]
      if (verb === 'show') return {exitCode: 0, stdout: args.includes('root') ? show().split('\n')[0] + '\n' : show()}
      state.tcCalls.push(args)
      const kind = args[args.length - 1]
      if (verb === 'replace' && args[4] === 'root') {
        if (unknown(kind)) return {exitCode: 2, stdout: '', stderr: 'Error: Specified qdisc kind is unknown.'}
        if (kind === 'mq' && queues === 1) return {exitCode: 2, stdout: '', stderr: 'RTNETLINK answers: Operation not supported'}
        if (kind === 'mq') attachDefault()
        else Object.assign(tree, {root: kind, children: []})
        return {exitCode: 0, stdout: ''}
      }
      if (verb === 'replace' && args[4] === 'parent') {
        if (unknown(kind)) return {exitCode: 2, stdout: '', stderr: 'Error: Specified qdisc kind is unknown.'}
        const index = Number.parseInt(args[5].replace(/^.*:/, ''), 16) - 1
        if (tree.root !== 'mq' || !(index >= 0 && index < tree.children.length)) return {exitCode: 2, stdout: '', stderr: 'Error: Failed to find specified qdisc.'}
        tree.children[index] = kind
        return {exitCode: 0, stdout: ''}
      }
      if (verb === 'del') {
        attachDefault()
        return {exitCode: 0, stdout: ''}
      }
      return {exitCode: 1, stdout: '', stderr: 'unsupported by the fake kernel'}
    },
  }
}
