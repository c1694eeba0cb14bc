import type {Hook} from '@oclif/core'
import {ExitCode} from '../lib/errors.js'
import {closeEnough, editDistance} from '../lib/near-names.js'

/**
 * `mtune pul`: oclif's own answer is " ›   Error: command pul not found", with no way on. Said
 * here as mtune says bad input (one line, exit 2; JSON with --json), with the nearest command.
 */
const hook: Hook<'command_not_found'> = async function (options) {
  // oclif joins the words after an unknown command into its id ("verfy x"): each command (or topic,
  // as "cache") is held against as many words as it has.
  let words = options.id.split(':')
  // `mtune help pull`, as git and npm take it: mtune's help is `--help`, shown the same; help of
  // something that is not a command is answered as that unknown command.
  if (words[0] === 'help') {
    const asked = [...words.slice(1), ...(options.argv ?? []).filter((a) => !a.startsWith('-'))]
    const id = asked.join(':')
    if (asked.length === 0 || options.config.findCommand(id) || options.config.findTopic(id)) {
      const {Help} = await import('@oclif/core')
      await new Help(options.config).showHelp(asked)
      return
    }
    words = asked
  }
  const names = [...options.config.commandIDs, ...options.config.topics.map((t) => t.name)].filter((id) => !id.startsWith('autocomplete'))
  const scored = names.map((id) => {
    const said = words.slice(0, id.split(':').length).join(' ')
    return {name: id.replaceAll(':', ' '), said, d: editDistance(said, id.replaceAll(':', ' '))}
  })
  // A topic typed right ("cache" of "cache sevre") is no answer: the command under it is.
  const nearest = scored.filter((s) => s.d > 0).sort((a, b) => a.d - b.d || b.name.length - a.name.length)[0]
  // Judged on the words that differ: "cache foo" is not a typo of "cache stop" for sharing "cache ".
  const close = nearest !== undefined && closeEnough(afterCommonWords(nearest.said, nearest.name), nearest.d)
  // Under a topic typed right (cache), the unknown command is its next word too.
  const topic = options.config.topics.some((t) => t.name === words[0]) && words.length > 1
  const typed = close ? nearest.said : words.slice(0, topic ? 2 : 1).join(' ')
  const message = `unknown command "${typed}": ${close ? `did you mean mtune ${nearest.name}? ` : ''}mtune --help lists the commands`
  if (options.argv?.includes('--json')) process.stdout.write(`${JSON.stringify({error: {code: 'unknown-command', message, exitCode: ExitCode.usage}}, null, 2)}\n`)
  else process.stderr.write(`Error: ${message}\n`)
  process.exit(ExitCode.usage)
}

/** `said` without the leading words it has in common with `name`. */
function afterCommonWords(said: string, name: string): string {
  const a = said.split(' ')
  const b = name.split(' ')
  let i = 0
  while (i < a.length - 1 && a[i] === b[i]) i++
  return a.slice(i).join(' ')
}

export default hook
