import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {ExitCode, MtuneError} from '../src/lib/errors.js'
import {refuseConnectionCounts, refuseListFlags, refuseMisplacedFlags, sizesOf, type PullFlags} from '../src/lib/ui/pull-flags.js'

/** The line a pull with these flags is refused with, or undefined where it goes ahead. */
function refusal(check: () => void): string | undefined {
  try {
    check()
    return undefined
  } catch (error) {
    assert.ok(error instanceof MtuneError, `a usage error, not ${String(error)}`)
    assert.equal(error.exitCode, ExitCode.usage)
    return error.message
  }
}

describe('which pull flags go with which source', () => {
  const kinds = ['url', 'hf', 'ollama', 'modelscope'] as const
  // Each flag that fits only some kinds of source, with the kinds it fits (and the refusal's start).
  const cases: Array<[PullFlags, ReadonlyArray<(typeof kinds)[number]>, RegExp]> = [
    [{output: '/models/'}, ['url'], /^--output applies to URLs only/],
    [{sha256: 'a'.repeat(64)}, ['url'], /^--sha256 applies to URLs only/],
    [{force: true}, ['url'], /^--force applies to URLs only/],
    [{continue: true}, ['url'], /^--continue applies to URLs/],
    [{mirror: ['https://m.example/f']}, ['url'], /^--mirror applies to URLs only/],
    [{include: ['*.json']}, ['hf', 'modelscope'], /^--include applies to hf:\/\/ and modelscope:\/\//],
    [{exclude: ['*.bin']}, ['hf', 'modelscope'], /^--exclude applies to hf:\/\/ and modelscope:\/\//],
    [{'local-dir': './m'}, ['hf', 'modelscope'], /^--local-dir applies to hf:\/\/ and modelscope:\/\//],
    [{endpoint: ['https://hf-mirror.com']}, ['hf', 'modelscope'], /^--endpoint applies to hf:\/\/ and modelscope:\/\//],
    [{insecure: true}, ['ollama'], /^--insecure applies to ollama:\/\//],
    [{verify: true}, ['hf', 'ollama', 'modelscope'], /^--verify re-hashes the files of a model source/],
  ]
  it('--mirror with --auto: measured for hf:// and modelscope://; an Ollama model has one registry, named in it', () => {
    for (const kind of ['url', 'hf', 'modelscope'] as const) assert.equal(refusal(() => refuseMisplacedFlags(kind, {mirror: ['https://m.example/'], auto: true})), undefined, kind)
    assert.match(refusal(() => refuseMisplacedFlags('ollama', {mirror: ['https://m.example/'], auto: true})) ?? 'taken', /^--mirror applies to URLs only; an Ollama model's registry is part of its name \(ollama:\/\/HOST\/NAMESPACE\/MODEL\)$/)
  })

  it('says what does the same for a model as a URL-only flag does for a file', () => {
    assert.match(refusal(() => refuseMisplacedFlags('hf', {output: 'm/'})) ?? '', /an hf:\/\/ model goes into its cache, or into a plain tree with --local-dir DIR$/)
    assert.match(refusal(() => refuseMisplacedFlags('modelscope', {force: true})) ?? '', /--verify re-hashes them and pulls again any that do not$/)
    assert.match(refusal(() => refuseMisplacedFlags('ollama', {sha256: 'a'.repeat(64)})) ?? '', /checked against the digests its hub publishes$/)
  })

  it('-c above --max-connections is refused: the ceiling was raised to it in silence', () => {
    assert.equal(refusal(() => refuseConnectionCounts({connections: 8, 'max-connections': 8})), undefined)
    assert.equal(refusal(() => refuseConnectionCounts({connections: 8})), undefined)
    assert.equal(refusal(() => refuseConnectionCounts({connections: 8, 'max-connections': 2})), '--connections 8 is more than --max-connections 2: the pull starts with -c and grows up to --max-connections; give -c 2 or less')
  })

  for (const [flags, fits, refused] of cases) {
    it(`${Object.keys(flags)[0]}: ${fits.join(', ')} only`, () => {
      for (const kind of kinds) {
        const line = refusal(() => refuseMisplacedFlags(kind, flags))
        if (fits.includes(kind)) assert.equal(line, undefined, `${kind} takes it`)
        else assert.match(line ?? 'taken', refused, `${kind} refuses it`)
      }
    })
  }

  it('says where an Ollama model goes instead, since it has neither -o nor --local-dir', () => {
    assert.match(refusal(() => refuseMisplacedFlags('ollama', {output: '/m'})) ?? '', /; an Ollama model goes into OLLAMA_MODELS \(set it to choose where\)$/)
    assert.match(refusal(() => refuseMisplacedFlags('ollama', {endpoint: ['https://r.example']})) ?? '', /another registry: ollama:\/\/HOST\/NAMESPACE\/MODEL/)
  })

  it('--auto takes mirrors for models and several endpoints; --tune and several endpoints need it', () => {
    assert.equal(refusal(() => refuseMisplacedFlags('hf', {auto: true, mirror: ['https://m.example'], endpoint: ['https://a.example', 'https://b.example'], tune: true})), undefined)
    assert.equal(refusal(() => refuseMisplacedFlags('hf', {tune: true})), '--tune needs --auto')
    // --auto's own settings, without it, would have been ignored in silence.
    assert.equal(refusal(() => refuseMisplacedFlags('url', {budget: 5})), '--budget is the time --auto measures for: give --auto too, or leave it out')
    assert.equal(refusal(() => refuseMisplacedFlags('hf', {'public-mirrors': false})), '--no-public-mirrors says which candidates --auto measures: give --auto too, or leave it out')
    assert.equal(refusal(() => refuseMisplacedFlags('hf', {auto: true, budget: 5, 'public-mirrors': false})), undefined)
    assert.match(refusal(() => refuseMisplacedFlags('hf', {endpoint: ['https://a.example', 'https://b.example']})) ?? '', /^several --endpoint values need --auto/)
  })

  it('-i FILE gives the URLs: a SOURCE beside it, or a flag a list cannot use, is refused', () => {
    assert.equal(refusal(() => refuseListFlags('urls.txt', undefined, {output: 'out/', force: true})), undefined)
    assert.match(refusal(() => refuseListFlags('urls.txt', 'https://x.example/a', {})) ?? '', /^-i urls\.txt gives the URLs: put https:\/\/x\.example\/a in it/)
    assert.match(refusal(() => refuseListFlags('urls.txt', undefined, {sha256: 'a'.repeat(64)})) ?? '', /checksum=sha-256=HEX/)
    assert.match(refusal(() => refuseListFlags('urls.txt', undefined, {auto: true})) ?? '', /^--auto does not apply to -i/)
    assert.match(refusal(() => refuseListFlags('urls.txt', undefined, {continue: true})) ?? '', /^--continue does not apply to -i/)
  })

  it('reads --chunk-size and --limit-rate, and refuses the ones no pull can use', () => {
    assert.deepEqual(sizesOf({'chunk-size': '16M', 'limit-rate': '400Mbit'}), {chunkSize: 16 * 1024 ** 2, limitRate: 50_000_000})
    assert.deepEqual(sizesOf({}), {chunkSize: undefined, limitRate: undefined})
    assert.match(refusal(() => sizesOf({'chunk-size': '1K'})) ?? '', /too small: use 64K or more/)
    assert.equal(refusal(() => sizesOf({'limit-rate': '0'})), '--limit-rate must be more than 0')
    assert.equal(refusal(() => sizesOf({'limit-rate': '5'})), '--limit-rate 5 is 5 bytes/s, too slow for any download: give a unit, e.g. 5M (MiB/s) or 5Mbit')
    assert.match(refusal(() => sizesOf({'limit-rate': '800B/s'})) ?? '', /^--limit-rate 800B\/s is 800 bytes\/s, too slow for any download: give a unit, e.g. 800M \(MiB\/s\)/)
    assert.deepEqual(sizesOf({'limit-rate': '1K'}), {chunkSize: undefined, limitRate: 1024})
  })
})
