import {spawn, spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {availableParallelism, tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {makeContent} from '../test/support/mirror-server.js'

/**
 * The verify row: one 1 GiB file, and a model of 8 shards of 128 MiB in the Hugging Face cache,
 * hashed by `mtune verify` and by coreutils `sha256sum`, from the page cache (each read once
 * before timing), medians of three.
 */
const MiB = 1024 * 1024
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const bin = join(root, 'bin', 'run.js')
const COMMIT = 'b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0'

export interface VerifyBench {
  cores: number
  single: {mtune: number; sha256sum: number}
  shards: {mtune: number; sha256sum: number}
}

function seconds(argv: string[], env: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn(argv[0], argv.slice(1), {stdio: 'ignore', env: {...process.env, ...env}})
    child.once('close', (code) => (code === 0 ? resolve((performance.now() - started) / 1000) : reject(new Error(`${argv.join(' ')} exited ${code}`))))
  })
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

export async function verifyBench(runs = 3): Promise<VerifyBench> {
  const dir = mkdtempSync(join(tmpdir(), 'mtune-verify-bench-'))
  try {
    const big = join(dir, 'model.gguf')
    const content = makeContent(1024 * MiB, 5)
    writeFileSync(big, content)
    const digest = createHash('sha256').update(content).digest('hex')
    // A model of shards, laid out as the Hugging Face cache does.
    const hub = join(dir, 'hub')
    const repo = join(hub, 'models--bench--shards')
    const shards: string[] = []
    for (let i = 0; i < 8; i++) {
      const shard = makeContent(128 * MiB, 100 + i)
      const sha = createHash('sha256').update(shard).digest('hex')
      const blob = join(repo, 'blobs', sha)
      mkdirSync(dirname(blob), {recursive: true})
      writeFileSync(blob, shard)
      const link = join(repo, 'snapshots', COMMIT, `model-${i}.safetensors`)
      mkdirSync(dirname(link), {recursive: true})
      symlinkSync(`../../blobs/${sha}`, link)
      shards.push(blob)
    }
    mkdirSync(join(repo, 'refs'), {recursive: true})
    writeFileSync(join(repo, 'refs', 'main'), COMMIT)
    spawnSync('cat', [big, ...shards], {stdio: 'ignore'})
    const env = {HF_HUB_CACHE: hub, HF_ENDPOINT: 'http://127.0.0.1:9'}
    const times = {single: {mtune: [] as number[], sha256sum: [] as number[]}, shards: {mtune: [] as number[], sha256sum: [] as number[]}}
    for (let i = 0; i < runs; i++) {
      times.single.sha256sum.push(await seconds(['sha256sum', big]))
      times.single.mtune.push(await seconds([bin, 'verify', big, '--sha256', digest, '--quiet']))
      times.shards.sha256sum.push(await seconds(['sha256sum', ...shards]))
      times.shards.mtune.push(await seconds([bin, 'verify', 'hf://bench/shards', '--offline', '--quiet'], env))
    }
    return {
      cores: availableParallelism(),
      single: {mtune: median(times.single.mtune), sha256sum: median(times.single.sha256sum)},
      shards: {mtune: median(times.shards.mtune), sha256sum: median(times.shards.sha256sum)},
    }
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

export function verifySection(r: VerifyBench): string {
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`
  return `## Verify: mtune verify against coreutils sha256sum

From the page cache (each file read once before timing), medians of three, on ${r.cores} cores.
The target: one 1 GiB file in at most 0.6x sha256sum's wall time. mtune's time includes Node's
start (about 0.3 s); its hashing is OpenSSL's sha256 with the CPU's SHA instructions, one worker
per file, as many workers as cores. sha256sum hashes one file after the other. With fewer files
than cores, a worker's next block is read (in libuv's pool, on a spare core) while it hashes
this one (src/lib/read-ahead.ts): one 1 GiB file took 1.39 against 1.61 s without it, medians
of 8 runs interleaved with the build before it, on 2 cores (2026-12-01).

| what | mtune verify s | sha256sum s | mtune / sha256sum |
|---|---|---|---|
| one 1 GiB file (\`verify FILE --sha256\`) | ${r.single.mtune.toFixed(2)} | ${r.single.sha256sum.toFixed(2)} | ${ratio(r.single.mtune, r.single.sha256sum)} |
| 8 shards of 128 MiB (\`verify hf://… --offline\`) | ${r.shards.mtune.toFixed(2)} | ${r.shards.sha256sum.toFixed(2)} | ${ratio(r.shards.mtune, r.shards.sha256sum)} |
`
}
