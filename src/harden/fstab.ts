/**
 * What the fast root mount reads from a guest, as pure functions: its fstab, the filesystems the
 * fstab names, and the distribution's name. Nothing here touches the guest.
 */

/** A filesystem of the guest as the appliance sees it. */
export interface GuestFs {
  device: string
  type: string
  uuid: string
  label: string
}

export interface FstabEntry {
  spec: string
  mountpoint: string
  type: string
  options: string[]
}

export function parseFstab(text: string): FstabEntry[] {
  return text.split('\n').flatMap((line) => {
    const [spec, mountpoint, type, options] = line.replace(/#.*$/, '').trim().split(/\s+/)
    return spec && mountpoint && type ? [{spec, mountpoint, type, options: (options ?? 'defaults').split(',')}] : []
  })
}

/**
 * Entries to mount under the root: real filesystems other than / and /boot, not noauto. Harden and
 * the audit touch /etc, /root, the homes and /var, never /boot.
 */
export function neededEntries(entries: FstabEntry[]): FstabEntry[] {
  return entries.filter((e) => e.mountpoint.startsWith('/') && e.mountpoint !== '/' && !/^\/boot(\/|$)/.test(e.mountpoint)
    && !['swap', 'none', 'tmpfs', 'proc', 'sysfs', 'devpts', 'nfs', 'nfs4', 'cifs', 'vboxsf', 'virtiofs', '9p', 'bind'].includes(e.type)
    && !e.options.includes('noauto') && !e.options.includes('bind'))
}

/** The appliance device an fstab spec names, or undefined when it cannot be told. */
export function resolveSpec(spec: string, filesystems: GuestFs[]): string | undefined {
  const by = (key: 'uuid' | 'label', value: string) => {
    const hits = filesystems.filter((f) => f[key] !== '' && f[key].toLowerCase() === value.toLowerCase())
    return hits.length === 1 ? hits[0].device : undefined
  }
  const m = /^(UUID|LABEL)=(.+)$/.exec(spec) ?? /^\/dev\/disk\/by-(uuid|label)\/(.+)$/.exec(spec)
  if (m) return by(m[1].toLowerCase() as 'uuid' | 'label', m[2])
  // The guest's /dev/vda1 (or sda1, hda1, xvda1) is the appliance's /dev/sda1.
  const dev = /^\/dev\/(?:[hsv]|xv)d([a-z]+\d*)$/.exec(spec)
  if (dev) return filesystems.find((f) => f.device === `/dev/sd${dev[1]}`)?.device
  // A logical volume: /dev/VG/LV, or /dev/mapper/VG-LV with a dash inside a name doubled.
  const lv = /^\/dev\/mapper\/((?:[^-/]|--)+)-((?:[^-/]|--)+)$/.exec(spec)
  const name = lv ? `/dev/${lv[1].replaceAll('--', '-')}/${lv[2].replaceAll('--', '-')}` : spec
  return filesystems.find((f) => f.device === name)?.device
}

/** os-release IDs that libguestfs inspection names otherwise; the others are the same in both. */
const INSPECTION_NAMES: Record<string, string> = {
  arch: 'archlinux', alpine: 'alpinelinux', ol: 'oraclelinux', 'opensuse-leap': 'opensuse',
  'opensuse-tumbleweed': 'opensuse', sles: 'sles', 'sle-micro': 'sles', amzn: 'amazonlinux', kali: 'kalilinux',
}

/** The distribution named by an os-release file, as libguestfs inspection names it ("unknown" if none). */
export function distroOf(osRelease: string): string {
  const id = /^ID=(["']?)([^"'\n]*)\1\s*$/m.exec(osRelease)?.[2]?.trim().toLowerCase()
  return id ? INSPECTION_NAMES[id] ?? id : 'unknown'
}
