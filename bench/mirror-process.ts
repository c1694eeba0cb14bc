import {makeContent, startMirror} from '../test/support/mirror-server.js'

/**
 * The test mirror in a process of its own, so that the benchmark measures the downloader's
 * CPU and memory only. Configuration comes as JSON in argv[2]; the URL goes to stdout.
 */
const config = JSON.parse(process.argv[2]) as {
  sizeMiB: number
  seed?: number
  perConnectionRate?: number
  linkRate?: number
  firstByteDelayMs?: number
  slowConnections?: {every: number; rate: number}
}
const mirror = await startMirror({
  content: makeContent(config.sizeMiB * 1024 * 1024, config.seed ?? 1),
  perConnectionRate: config.perConnectionRate,
  linkRate: config.linkRate,
  firstByteDelayMs: config.firstByteDelayMs,
  slowConnections: config.slowConnections,
})
process.stdout.write(JSON.stringify({url: mirror.url, origin: mirror.origin}) + '\n')
process.on('SIGTERM', () => void mirror.close().then(() => process.exit(0)))
