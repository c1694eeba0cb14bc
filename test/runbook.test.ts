import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {BIN, runCli} from './support/cli.js'

/** Every `mtune ...` command line in docs/RUNBOOK.md, from its console blocks and inline code. */
function runbookCommands(): string[] {
  const text = readFileSync(join(BIN, '..', '..', 'docs', 'RUNBOOK.md'), 'utf8')
  const commands = new Set<string>()
  for (const line of text.split('\n')) {
    const prompt = /^\$ (?:sudo (?:-u \S+ )?(?:env (?:\S+=\S+ )*)?)?(mtune .*)$/.exec(line)
    if (prompt) commands.add(prompt[1])
  }
  for (const m of text.matchAll(/`((?:sudo )?mtune [^`]+)`/g)) commands.add(m[1].replace(/^sudo /, ''))
  return [...commands]
}

describe('docs/RUNBOOK.md', () => {
  const commands = runbookCommands()

  it('has the sections an operator needs', () => {
    const text = readFileSync(join(BIN, '..', '..', 'docs', 'RUNBOOK.md'), 'utf8')
    for (const heading of ['Preflight', 'Network', 'Tuning', 'Pulling', 'Troubleshooting', 'Many servers']) assert.match(text, new RegExp(`^## \\d\\. ${heading}`, 'm'))
    assert.ok(commands.length >= 15, `found ${commands.length} commands`)
  })

  it('uses only commands and flags that exist (each checked against --help)', async () => {
    const help = new Map<string, string>()
    for (const command of commands) {
      const words = command.split(/\s+/)
      // Topics (mtune cache serve) have their commands one word further.
      const topic = words[1] === 'cache' ? 3 : 2
      const sub = words.slice(1, topic).join(' ')
      if (!help.has(sub)) {
        const r = await runCli([...sub.split(' '), '--help'])
        assert.equal(r.code, 0, `mtune ${sub} --help: ${r.stderr}`)
        help.set(sub, r.stdout)
      }
      const text = help.get(sub)!
      for (const word of words.slice(topic)) {
        const flag = /^(--[a-z][a-z0-9-]*)/.exec(word)?.[1] ?? /^(-[a-z])$/.exec(word)?.[1]
        if (!flag) continue
        const known = flag.startsWith('--') ? new RegExp(`${flag}(?![a-z-])|--\\[no-\\]${flag.slice(2)}(?![a-z-])`).test(text) || (flag === '--no-public-mirrors' && /--\[no-\]public-mirrors/.test(text)) : new RegExp(`${flag}, --`).test(text)
        assert.ok(known, `"${command}": mtune ${sub} has no ${flag}`)
      }
    }
  })
})
