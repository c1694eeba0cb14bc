import {spawn, spawnSync} from 'node:child_process'
import {once} from 'node:events'
import {freePort} from './free-port.js'
import {readFileSync, writeFileSync} from 'node:fs'
import {connect} from 'node:net'
import {join} from 'node:path'
import {tempDir} from './temp.js'

/** Debian's tinyproxy, when installed (.ci/run installs it): a real forward proxy for the proxy tests. */
export const TINYPROXY = ['/usr/bin/tinyproxy', '/usr/sbin/tinyproxy'].find((p) => spawnSync(p, ['-v']).status === 0)

/**
 * tinyproxy on a loopback port, in the foreground, logging every request it handles (CONNECT
 * lines name the server tunnelled to). Without `connectPorts`, tunnels to any port are allowed;
 * Debian's own configuration allows 443 and 563 only, as most proxies do.
 */
export async function startTinyproxy(connectPorts: number[] = []): Promise<{url: string; log(): string; close(): Promise<void>}> {
  if (!TINYPROXY) throw new Error('tinyproxy is not installed: apt-get install -y tinyproxy')
  const dir = tempDir('tinyproxy')
  const port = await freePort()
  const logFile = join(dir, 'tinyproxy.log')
  const user = process.getuid?.() === 0 ? 'User nobody\nGroup nogroup\n' : ''
  writeFileSync(join(dir, 'tinyproxy.conf'), `${user}Port ${port}\nListen 127.0.0.1\nTimeout 60\nLogFile "${logFile}"\nLogLevel Connect\nMaxClients 200\nAllow 127.0.0.1\n${connectPorts.map((p) => `ConnectPort ${p}\n`).join('')}`)
  writeFileSync(logFile, '')
  spawnSync('chmod', ['-R', 'a+rwX', dir])
  const child = spawn(TINYPROXY, ['-d', '-c', join(dir, 'tinyproxy.conf')], {stdio: 'ignore'})
  // Ready once it accepts connections.
  const deadline = Date.now() + 10_000
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)))
      s.on('error', () => resolve(false))
    })
    if (ok) break
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`tinyproxy did not start (see ${logFile})`)
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    url: `http://127.0.0.1:${port}`,
    log: () => readFileSync(logFile, 'utf8'),
    async close() {
      child.kill('SIGTERM')
      if (child.exitCode === null) await once(child, 'exit')
    },
  }
}
