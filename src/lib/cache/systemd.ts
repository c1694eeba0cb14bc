import type {CacheOptions} from './options.js'
import {nginxArgs, paths} from './nginx.js'

const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `"${s.replace(/(["\\$`])/g, '\\$1')}"`)

/**
 * A unit that writes the configuration (mtune cache config --write, with the same flags) and runs
 * nginx on it, as Debian's nginx.service runs nginx: forking, with its pid file.
 */
export function systemdUnit(o: CacheOptions, run: {nginx: string; mtune: string}): string {
  const args = nginxArgs(o.dir).map(quote).join(' ')
  // The options as flags, absolute: systemd runs it from /.
  const listen = `${o.listen.host.includes(':') ? `[${o.listen.host}]` : o.listen.host}:${o.listen.port}`
  const flags = [
    ['--dir', o.dir],
    ['--listen', listen],
    ['--hf-upstream', o.upstreams.hf],
    ['--ollama-upstream', o.upstreams.ollama],
    ['--modelscope-upstream', o.upstreams.modelscope],
    ['--max-size', String(o.maxSize)],
    // As given: a share of the disk is worked out again on the host at each start.
    ['--min-free', o.minFree],
    ...Object.entries(o.origins).map(([name, url]) => ['--origin', `${name}=${url}`]),
    ...o.cdnHosts.map((h) => ['--cdn-host', h]),
  ]
    .map(([flag, value]) => `${flag} ${quote(value)}`)
    .join(' ')
  return [
    '# Written by mtune cache config --systemd: an mtune cache (nginx) that survives reboots.',
    '# Install: save as /etc/systemd/system/mtune-cache.service, then: systemctl daemon-reload && systemctl enable --now mtune-cache',
    '[Unit]',
    `Description=mtune cache: pull-through cache for model hubs in ${o.dir}`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=forking',
    `PIDFile=${paths(o.dir).pid}`,
    `ExecStartPre=${quote(process.execPath)} ${quote(run.mtune)} cache config ${flags} --write`,
    `ExecStartPre=${quote(run.nginx)} -t -q ${args}`,
    `ExecStart=${quote(run.nginx)} ${args}`,
    `ExecReload=${quote(run.nginx)} -s reload ${args}`,
    `ExecStop=${quote(run.nginx)} -s quit ${args}`,
    'TimeoutStopSec=30',
    'Restart=on-failure',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n')
}
