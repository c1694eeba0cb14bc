import {chmodSync, mkdirSync, symlinkSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {tempDir} from './temp.js'

/** A fake / with the /proc and /sys files doctor reads: files as text, links as sysfs has them. */
export function tree(files: Record<string, string>, links: Record<string, string> = {}): string {
  const root = tempDir('sys')
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), {recursive: true})
    writeFileSync(join(root, path), text)
  }
  for (const [path, target] of Object.entries(links)) {
    mkdirSync(dirname(join(root, path)), {recursive: true})
    symlinkSync(target, join(root, path))
  }
  return root
}

const meminfo = (totalKb: number, availKb: number, swapKb = 0) =>
  `MemTotal:       ${totalKb} kB\nMemFree:        ${availKb} kB\nMemAvailable:   ${availKb} kB\nSwapTotal:      ${swapKb} kB\nSwapFree:       ${swapKb} kB\n`

const mountinfo = (lines: Array<[string, string, string, string]>) =>
  lines.map(([mm, mp, fs, src], i) => `${20 + i} 1 ${mm} / ${mp} rw,relatime shared:1 - ${fs} ${src} rw`).join('\n') + '\n'

const sysctl = (values: Record<string, string>) => Object.fromEntries(Object.entries(values).map(([k, v]) => [`/proc/sys/${k.replace(/\./g, '/')}`, `${v}\n`]))

const route = (iface: string) => `Iface\tDestination\tGateway\tFlags\n${iface}\t00000000\t0101A8C0\t0003\n${iface}\t0001A8C0\t00000000\t0001\n`

const queue = (dev: string, scheduler: string, readAhead: number, rotational: 0 | 1) => ({
  [`${dev}/queue/scheduler`]: `${scheduler}\n`,
  [`${dev}/queue/read_ahead_kb`]: `${readAhead}\n`,
  [`${dev}/queue/rotational`]: `${rotational}\n`,
})

/** An NVMe GPU server already tuned: BBR with fq, big buffers, none scheduler. */
export function nvmeGpuServer(): string {
  const disk = '/sys/devices/pci0000:00/0000:00:01.0/nvme/nvme0/nvme0n1'
  return tree(
    {
      '/proc/meminfo': meminfo(512 * 1024 * 1024, 500 * 1024 * 1024, 8 * 1024 * 1024),
      '/proc/self/mountinfo': mountinfo([
        ['259:2', '/', 'ext4', '/dev/nvme0n1p2'],
        ['259:1', '/models', 'xfs', '/dev/nvme0n1p1'],
      ]),
      '/proc/self/limits': 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1048576              1048576              files\n',
      '/proc/net/route': route('eth0'),
      '/proc/sys/kernel/osrelease': '6.8.0-45-generic\n',
      ...sysctl({
        'net.ipv4.tcp_congestion_control': 'bbr',
        'net.ipv4.tcp_available_congestion_control': 'reno cubic bbr',
        'net.core.default_qdisc': 'fq',
        'net.core.rmem_max': '536870912',
        'net.core.wmem_max': '536870912',
        'net.ipv4.tcp_rmem': '4096\t87380\t536870912',
        'net.ipv4.tcp_wmem': '4096\t65536\t536870912',
        'net.ipv4.tcp_window_scaling': '1',
        'net.ipv4.tcp_slow_start_after_idle': '0',
        'net.ipv4.tcp_mtu_probing': '1',
      }),
      '/sys/class/net/eth0/speed': '100000\n',
      '/sys/class/net/eth0/mtu': '9000\n',
      [`${disk}/nvme0n1p1/partition`]: '1\n',
      [`${disk}/nvme0n1p2/partition`]: '2\n',
      ...queue(disk, '[none] mq-deadline kyber', 4096, 0),
    },
    {
      '/sys/dev/block/259:1': '../../devices/pci0000:00/0000:00:01.0/nvme/nvme0/nvme0n1/nvme0n1p1',
      '/sys/dev/block/259:2': '../../devices/pci0000:00/0000:00:01.0/nvme/nvme0/nvme0n1/nvme0n1p2',
      '/sys/block/nvme0n1': '../devices/pci0000:00/0000:00:01.0/nvme/nvme0/nvme0n1',
    },
  )
}

/** An old HDD box with distribution defaults: cubic, fq_codel, small buffers, bfq, slow start on. */
export function hddBox(): string {
  const disk = '/sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda'
  return tree(
    {
      '/proc/meminfo': meminfo(16 * 1024 * 1024, 12 * 1024 * 1024),
      '/proc/self/mountinfo': mountinfo([['8:1', '/', 'ext4', '/dev/sda1']]),
      '/proc/self/limits': 'Max open files            512                  4096                 files\n',
      '/proc/net/route': route('enp3s0'),
      '/proc/sys/kernel/osrelease': '5.15.0-100-generic\n',
      '/lib/modules/5.15.0-100-generic/kernel/net/ipv4/tcp_bbr.ko': 'module',
      '/lib/modules/5.15.0-100-generic/kernel/net/sched/sch_fq.ko': 'module',
      ...sysctl({
        'net.ipv4.tcp_congestion_control': 'cubic',
        'net.ipv4.tcp_available_congestion_control': 'reno cubic',
        'net.core.default_qdisc': 'fq_codel',
        'net.core.rmem_max': '212992',
        'net.core.wmem_max': '212992',
        'net.ipv4.tcp_rmem': '4096\t131072\t6291456',
        'net.ipv4.tcp_wmem': '4096\t16384\t4194304',
        'net.ipv4.tcp_window_scaling': '1',
        'net.ipv4.tcp_slow_start_after_idle': '1',
      }),
      '/sys/class/net/enp3s0/speed': '1000\n',
      '/sys/class/net/enp3s0/mtu': '1500\n',
      [`${disk}/sda1/partition`]: '1\n',
      ...queue(disk, 'mq-deadline [bfq] none', 128, 1),
    },
    {
      '/sys/dev/block/8:1': '../../devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda1',
      '/sys/block/sda': '../devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda',
    },
  )
}

/** A container: overlay root, no /sys, no /proc/sys. */
export function container(): string {
  return tree({
    '/proc/meminfo': meminfo(64 * 1024 * 1024, 60 * 1024 * 1024),
    '/proc/self/mountinfo': mountinfo([['0:52', '/', 'overlay', 'overlay']]),
  })
}

/** LVM on a partition of a SATA SSD: dm-0 -> sdb2 -> sdb. */
export function lvmOnPartition(): string {
  const disk = '/sys/devices/pci0000:00/0000:00:17.0/ata2/host1/target1:0:0/1:0:0:0/block/sdb'
  return tree(
    {
      '/proc/meminfo': meminfo(128 * 1024 * 1024, 100 * 1024 * 1024),
      '/proc/self/mountinfo': mountinfo([
        ['8:17', '/', 'ext4', '/dev/sdb1'],
        ['253:0', '/data', 'xfs', '/dev/mapper/vg0-data'],
      ]),
      '/sys/devices/virtual/block/dm-0/dm/name': 'vg0-data\n',
      [`${disk}/sdb2/partition`]: '2\n',
      ...queue(disk, '[none] mq-deadline', 128, 0),
      ...queue('/sys/devices/virtual/block/dm-0', 'none', 128, 0),
    },
    {
      '/sys/dev/block/253:0': '../../devices/virtual/block/dm-0',
      '/sys/devices/virtual/block/dm-0/slaves/sdb2': '../../../../pci0000:00/0000:00:17.0/ata2/host1/target1:0:0/1:0:0:0/block/sdb/sdb2',
      '/sys/block/sdb': '../devices/pci0000:00/0000:00:17.0/ata2/host1/target1:0:0/1:0:0:0/block/sdb',
      '/sys/block/dm-0': '../devices/virtual/block/dm-0',
    },
  )
}

/** A directory holding an `nvidia-smi` that prints `csv` (the answer to doctor's query). */
export function fakeNvidiaSmi(csv: string): string {
  const bin = tempDir('bin')
  writeFileSync(join(bin, 'nvidia-smi'), `#!/bin/sh\ncat <<'EOF'\n${csv}\nEOF\n`)
  chmodSync(join(bin, 'nvidia-smi'), 0o755)
  return bin
}
