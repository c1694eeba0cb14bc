import {usageError} from '../errors.js'
import {GROUPS, type Group} from './finding.js'

/** A source as pull and verify take it: a URL, hf://, ollama://, modelscope://. */
const SOURCE = /^[a-z][a-z0-9+.-]*:\/\//i

/**
 * doctor's arguments: check groups, and at most one model. `mtune doctor hf://org/name` reads as
 * pull and verify read their SOURCE, so a source (or a path that exists, a model on disk) among
 * them is the model, as `--model` gives it; a group's name stays a group (`./disk` is the
 * folder). Pure: `exists` says whether a path is there.
 */
export function doctorArgs(args: string[], o: {model?: string; size?: string; exists: (path: string) => boolean}): {groups: Group[]; model?: string} {
  const groups: Group[] = []
  const models: string[] = []
  for (const arg of args) {
    const g = arg.toLowerCase() as Group
    if (GROUPS.includes(g)) groups.push(g)
    else if (SOURCE.test(arg) || o.exists(arg)) models.push(arg)
    else throw usageError('bad-check', `unknown check "${arg}": choose from ${GROUPS.join(', ')}, or give a model as a URL, hf://, ollama://, modelscope:// or a path that exists`)
  }
  if (models.length === 0) return {groups, model: o.model}
  if (models.length > 1) throw usageError('bad-check', `doctor checks one model at a time, not ${models.length} (${models.join(', ')}): run it once for each`)
  const [model] = models
  if (o.model !== undefined) throw usageError('bad-check', `two models given: "${model}" and --model ${o.model}: give one`)
  if (o.size !== undefined) throw usageError('bad-check', `a model ("${model}") and --size given: the size is looked up from the model, so give one of them`)
  return {groups, model}
}
