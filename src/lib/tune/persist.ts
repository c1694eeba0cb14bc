import type {Knob} from './recommend.js'

export const SYSCTL_CONF = '/etc/sysctl.d/99-mtune.conf'
export const UDEV_RULES = '/etc/udev/rules.d/60-mtune-block.rules'

const header = (what: string, now: Date) =>
  [
    `# Written by mtune tune --persist on ${now.toISOString()}: ${what}.`,
    '# Undo: sudo mtune tune --rollback (restores the values from before and removes this file),',
    '# or delete this file and reboot.',
  ].join('\n')

/** sysctl.d: named 99-* so that it sorts after systemd's 50-default.conf, which sets fq_codel. */
export function sysctlConf(knobs: Knob[], now = new Date()): string | undefined {
  const lines = knobs.filter((k) => k.persist?.sysctl).map((k) => k.persist!.sysctl!)
  if (lines.length === 0) return undefined
  return `${header('network settings for large downloads', now)}\n${lines.join('\n')}\n`
}

/** A scheduler or read-ahead choice survives a reboot only through udev, not sysctl. */
export function udevRules(knobs: Knob[], now = new Date()): string | undefined {
  const byDevice = new Map<string, string[]>()
  for (const k of knobs) {
    const u = k.persist?.udev
    if (!u) continue
    byDevice.set(u.device, [...(byDevice.get(u.device) ?? []), u.attr])
  }
  if (byDevice.size === 0) return undefined
  const rules = [...byDevice].map(([dev, attrs]) => `ACTION=="add|change", SUBSYSTEM=="block", KERNEL=="${dev}", ${attrs.join(', ')}`)
  return `${header('block device scheduler and read-ahead', now)}\n${rules.join('\n')}\n`
}
