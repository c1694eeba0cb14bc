import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {findNginx} from '../src/lib/cache/nginx.js'
import {startCdn, startFakeHf} from '../test/support/fake-hubs.js'
import {freePort} from '../test/support/free-port.js'
import {makeContent} from '../test/support/mirror-server.js'

/**
 * The fleet row: K servers pulling one model at once, through one cold mtune cache (a real
 * nginx) and straight from the CDN, the CDN capped per connection as real CDNs are. What it
 * shows: the CDN's bytes over the model's size (one copy through the cache, K without), and
 * the wall time of the K pulls.
 */
const MiB = 1024 * 1024
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const bin = join(root, 'bin', 'run.js')
const COMMIT = 'f1ee7000000000000000000000000000000f1ee7'

export interface FleetResult {
  k: number
  sizeMiB: number
  perConnectionMiB: number
  cached: {seconds: number; cdnCopies: number; ok: boolean}
  /** `mtune cache warm` first (its own seconds), then the K pulls: all hits. */
  warmed: {seconds: number; cdnCopies: number; ok: boolean; warmSeconds: number}
  direct: {seconds: number; cdnCopies: number; ok: boolean}
}

function run(args: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(bin, args, {stdio: 'ignore', env: {...process.env, ...env}})
    child.once('close', (code) => resolve(code ?? 1))
  })
}

export async function fleet(k = 4, sizeMiB = 256, perConnectionMiB = 16): Promise<FleetResult | undefined> {
  if (!findNginx()) {
    console.log('nginx is not installed (apt-get install -y nginx): no fleet row')
    return undefined
  }
  const content = makeContent(sizeMiB * MiB, 7)
  const digest = createHash('sha256').update(content).digest('hex')
  const once = async (mode: 'cold' | 'warmed' | 'direct') => {
    const viaCache = mode !== 'direct'
    const cdn = await startCdn({perConnectionRate: perConnectionMiB * MiB, ttlMs: 3_600_000})
    const hub = await startFakeHf([{id: 'fleet/model', commit: COMMIT, files: [{path: 'model.safetensors', content, lfs: true}]}], {cdn})
    const cacheDir = mkdtempSync(join(tmpdir(), 'mtune-fleet-cache-'))
    const homes = Array.from({length: k}, () => mkdtempSync(join(tmpdir(), 'mtune-fleet-client-')))
    try {
      let cache: string | undefined
      if (viaCache) {
        const port = await freePort()
        const code = await run(['cache', 'serve', '--dir', cacheDir, '--listen', `127.0.0.1:${port}`, '--hf-upstream', hub.origin], {})
        if (code !== 0) throw new Error(`mtune cache serve exited ${code}`)
        cache = `http://127.0.0.1:${port}`
      }
      let warmSeconds = 0
      if (mode === 'warmed') {
        const warming = performance.now()
        const code = await run(['cache', 'warm', 'hf://fleet/model', '--cache', cache!, '--quiet'], {HF_TOKEN: ''})
        if (code !== 0) throw new Error(`mtune cache warm exited ${code}`)
        warmSeconds = (performance.now() - warming) / 1000
      }
      const started = performance.now()
      const codes = await Promise.all(
        homes.map((home) => run(['pull', 'hf://fleet/model', '--quiet'], {HF_HOME: home, HF_HUB_CACHE: join(home, 'hub'), HF_ENDPOINT: hub.origin, HF_TOKEN: '', ...(cache ? {MTUNE_CACHE: cache} : {MTUNE_CACHE: ''})})),
      )
      const seconds = (performance.now() - started) / 1000
      const ok = codes.every((c) => c === 0) && homes.every((h) => createHash('sha256').update(readFileSync(join(h, 'hub', 'models--fleet--model', 'blobs', digest))).digest('hex') === digest)
      return {seconds, cdnCopies: cdn.mirror.bytesSent / content.length, ok, warmSeconds}
    } finally {
      if (viaCache) await run(['cache', 'stop', '--dir', cacheDir], {})
      await hub.close()
      await cdn.close()
      for (const d of [cacheDir, ...homes]) rmSync(d, {recursive: true, force: true})
    }
  }
  const cached = await once('cold')
  const warmed = await once('warmed')
  const direct = await once('direct')
  return {k, sizeMiB, perConnectionMiB, cached, warmed, direct}
}

export function fleetSection(r: FleetResult): string {
  return `## Fleet: ${r.k} servers, one model, one cache

${r.k} concurrent \`mtune pull hf://…\` of one ${r.sizeMiB} MiB model, each into its own Hugging Face cache,
from a fake hub whose CDN allows ${r.perConnectionMiB} MiB/s per connection: through one cold \`mtune cache\`
(a real nginx, \`MTUNE_CACHE\`); through one cache warmed first by \`mtune cache warm\` (the warm's own
time beside it: it reads the model once, over 8 connections); then straight from the CDN. "CDN copies"
is the bytes the CDN sent divided by the model's size. Everything shares this machine's 2 cores (CDN, hub, nginx and ${r.k} pulls),
so the wall times say little about a real rack; the CDN's bytes are the point.

| path | CDN copies | wall s | all ${r.k} copies intact |
|---|---|---|---|
| through one cold cache | ${r.cached.cdnCopies.toFixed(2)} | ${r.cached.seconds.toFixed(1)} | ${r.cached.ok ? 'yes' : '**no**'} |
| through one cache warmed first (warm: ${r.warmed.warmSeconds.toFixed(1)} s) | ${r.warmed.cdnCopies.toFixed(2)} | ${r.warmed.seconds.toFixed(1)} | ${r.warmed.ok ? 'yes' : '**no**'} |
| straight from the CDN | ${r.direct.cdnCopies.toFixed(2)} | ${r.direct.seconds.toFixed(1)} | ${r.direct.ok ? 'yes' : '**no**'} |
`
}
