import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {renderWarm} from '../src/lib/ui/cache-output.js'
import type {WarmReport} from '../src/lib/cache/warm-source.js'

const MiB = 1024 * 1024
const report = (over: Partial<WarmReport> = {}): WarmReport => ({
  source: 'hf://org/model@main',
  cache: 'http://10.0.0.5:8080/',
  files: [{name: 'model.safetensors', size: 36 * MiB, cachedBytes: 12 * MiB, verified: true}],
  bytes: 36 * MiB,
  cachedBytes: 12 * MiB,
  seconds: 0.42,
  intact: true,
  ...over,
})

describe('renderWarm', () => {
  it('says what the cache held and fetched, and a warm under a second in tenths, not "0s"', () => {
    assert.equal(renderWarm(report()), '✓ hf://org/model@main: 1 file, 36.0 MiB in the cache at http://10.0.0.5:8080 (33% was cached already); 24.0 MiB fetched upstream in 0.4s, verified')
    assert.match(renderWarm(report({seconds: 125})), / fetched upstream in 2m05s, verified$/)
  })

  it('names a file the cache serves wrong, and how to clear it', () => {
    const bad = renderWarm(report({intact: false, files: [{name: 'model.safetensors', size: 36 * MiB, cachedBytes: 0, verified: false, got: 'ab'.repeat(32)}]}))
    assert.match(bad, /^✗ model\.safetensors: the cache serves other bytes than were published \(abababababab\.\.\.\)/)
    assert.match(bad, /not intact in the cache at http:\/\/10\.0\.0\.5:8080: clear its cache\/ folder/)
  })
})
