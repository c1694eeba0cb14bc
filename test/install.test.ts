import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {describe, it} from 'node:test'
import {BIN} from './support/cli.js'
import {tempDir} from './support/temp.js'

const run = promisify(execFile)
const repo = join(BIN, '..', '..')

describe('installing mtune as docs/RUNBOOK.md says', () => {
  it('npm pack, then npm install -g of the tarball into a prefix, gives a working mtune on PATH', async () => {
    const work = tempDir('install')
    // The build is already there (npm test builds first): packing must not rebuild it under the other tests.
    await run('npm', ['pack', '--ignore-scripts', '--pack-destination', work], {cwd: repo})
    const tarball = readdirSync(work).find((f) => /^mtune-.*\.tgz$/.test(f))
    assert.ok(tarball, `npm pack made no tarball in ${work}`)
    const prefix = join(work, 'prefix')
    // Dependencies from npm's cache (filled by npm ci), so that no network is needed.
    await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(work, tarball)], {cwd: work, timeout: 240_000})
    const {stdout} = await run(join(prefix, 'bin', 'mtune'), ['--version'], {cwd: work})
    assert.match(stdout, /^mtune\/\d+\.\d+\.\d+ /)
    const help = await run(join(prefix, 'bin', 'mtune'), ['pull', '--help'], {cwd: work})
    assert.match(help.stdout, /--sha256/)
    // The package carries oclif's manifest, so that a run loads only its own command's files.
    const manifest = JSON.parse(readFileSync(join(prefix, 'lib', 'node_modules', 'mtune', 'oclif.manifest.json'), 'utf8'))
    for (const id of ['pull', 'verify', 'doctor', 'bench', 'tune', 'cache:serve', 'cache:warm']) assert.ok(manifest.commands[id], `the manifest lacks ${id}`)
  })
})

describe('mtune among the tools ops already use', () => {
  it('says its version, and completes its commands in bash and zsh (oclif autocomplete)', async () => {
    const {runCli} = await import('./support/cli.js')
    const cache = tempDir('ac')
    const version = await runCli(['--version'])
    assert.match(version.stdout, /^mtune\/\d+\.\d+\.\d+ /)
    for (const shell of ['bash', 'zsh']) {
      const r = await runCli(['autocomplete', 'script', shell], {XDG_CACHE_HOME: cache})
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, /MTUNE_AC_/)
    }
    const setup = await runCli(['autocomplete', 'bash'], {XDG_CACHE_HOME: cache})
    assert.equal(setup.code, 0, setup.stderr)
    // The completions it built name every command, the topic's too.
    const {execFileSync} = await import('node:child_process')
    const files = execFileSync('sh', ['-c', `cat $(find ${cache} -type f)`], {encoding: 'utf8'})
    for (const command of ['pull', 'verify', 'doctor', 'bench', 'tune', 'cache']) assert.match(files, new RegExp(command))
  })
})
