/**
 * What was probably meant by a name that matched nothing: a command, a file of a repo. Pure, so
 * that the commands and the sources say "did you mean ...?" the same way.
 */

/** Levenshtein's edit distance: letters added, dropped or changed. */
export function editDistance(a: string, b: string): number {
  let row = Array.from({length: b.length + 1}, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    row = next
  }
  return row[b.length]
}

/** Close enough to be a typo of `typed`: two letters, or a third of a longer name. */
export const closeEnough = (typed: string, d: number): boolean => d > 0 && d <= Math.max(2, Math.floor(typed.length / 3))

/**
 * The path in a repo that `typed` most likely meant, or undefined when none is close:
 * - the same file or folder in another folder (`model.gguf` for `gguf/model.gguf`), the usual
 *   mistake with repos that keep their weights in a subfolder;
 * - the same name in another case (`Config.json`);
 * - a typo of a file or of a folder (`config.jsn`, `onnx-fp16/` for `onnx_fp16/`).
 */
export function nearestPath(typed: string, names: string[]): string | undefined {
  const wanted = typed.replace(/^\/+|\/+$/g, '')
  if (!wanted) return undefined
  const folders = [...new Set(names.flatMap((n) => n.split('/').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'))))]
  const all = [...names, ...folders]
  const inFolder = all.filter((n) => n.endsWith(`/${wanted}`))
  if (inFolder.length === 1) return inFolder[0]
  const cased = all.find((n) => n.toLowerCase() === wanted.toLowerCase())
  if (cased) return cased
  // A length too far off cannot be close: a dataset's 100,000 names are mostly skipped before the distance.
  const most = Math.max(2, Math.floor(wanted.length / 3))
  const scored = all
    .filter((n) => Math.abs(n.length - wanted.length) <= most)
    .map((n) => ({n, d: editDistance(wanted.toLowerCase(), n.toLowerCase())}))
    .filter((s) => closeEnough(wanted, s.d))
  scored.sort((a, b) => a.d - b.d || a.n.length - b.n.length)
  return scored[0]?.n
}
