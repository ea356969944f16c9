import {describe, expect, it} from 'vitest'

import {distroOf, neededEntries, parseFstab, resolveSpec, type GuestFs} from '../../../src/harden/fstab.js'

const filesystems: GuestFs[] = [
  {device: '/dev/sda1', type: 'ext4', uuid: 'd0090e6a-06ce-41e0-b134-b623544fd708', label: 'debian-12-root'},
  {device: '/dev/sda2', type: 'xfs', uuid: '1111', label: 'home'},
  {device: '/dev/sdb1', type: 'ext4', uuid: '2222', label: 'home'},
  {device: '/dev/vg-0/srv', type: 'xfs', uuid: '3333', label: ''},
]

describe('fstab handling of the fast root mount', () => {
  it('keeps the entries the audit needs: not /, /boot, swap, pseudo or network filesystems, noauto or bind mounts', () => {
    const entries = parseFstab([
      '# <file system> <mount point> <type> <options> <dump> <pass>', 'LABEL=debian-12-root / ext4 errors=remount-ro 0 1',
      'UUID=1111 /home xfs defaults 0 2', 'UUID=AAAA /boot/efi vfat umask=0077 0 1', '/dev/vda3 none swap sw 0 0',
      'tmpfs /tmp tmpfs defaults 0 0', 'server:/export /mnt/nfs nfs defaults 0 0', '/dev/vdb1 /data ext4 noauto 0 0',
      '/srv/www /var/www none bind 0 0', '/dev/vdb1   /srv   ext4  # no options',
    ].join('\n'))
    expect(neededEntries(entries)).toEqual([
      {spec: 'UUID=1111', mountpoint: '/home', type: 'xfs', options: ['defaults']},
      {spec: '/dev/vdb1', mountpoint: '/srv', type: 'ext4', options: ['defaults']},
    ])
  })

  it('resolves UUID, LABEL, by-uuid paths and guest device names, and nothing ambiguous', () => {
    expect(resolveSpec('UUID=D0090E6A-06CE-41E0-B134-B623544FD708', filesystems)).toBe('/dev/sda1')
    expect(resolveSpec('/dev/disk/by-uuid/2222', filesystems)).toBe('/dev/sdb1')
    expect(resolveSpec('LABEL=debian-12-root', filesystems)).toBe('/dev/sda1')
    expect(resolveSpec('/dev/vda2', filesystems)).toBe('/dev/sda2')
    expect(resolveSpec('/dev/xvdb1', filesystems)).toBe('/dev/sdb1')
    // Two filesystems carry this label: inspection has to decide, not a guess.
    expect(resolveSpec('LABEL=home', filesystems)).toBeUndefined()
    expect(resolveSpec('PARTUUID=abcd-01', filesystems)).toBeUndefined()
    expect(resolveSpec('/dev/mapper/vg-home', filesystems)).toBeUndefined()
  })

  it('resolves a logical volume by /dev/VG/LV and by its device-mapper name, dashes doubled', () => {
    expect(resolveSpec('/dev/vg-0/srv', filesystems)).toBe('/dev/vg-0/srv')
    expect(resolveSpec('/dev/mapper/vg--0-srv', filesystems)).toBe('/dev/vg-0/srv')
    expect(resolveSpec('/dev/mapper/vg-0-srv', filesystems)).toBeUndefined()
    expect(resolveSpec('/dev/md0', filesystems)).toBeUndefined()
  })
})

describe('distroOf', () => {
  it('names the distribution of os-release as libguestfs inspection does', () => {
    expect(distroOf('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n')).toBe('debian')
    expect(distroOf('NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\n')).toBe('ubuntu')
    expect(distroOf('ID="rocky"\n')).toBe('rocky')
    expect(distroOf("ID='opensuse-leap'\n")).toBe('opensuse')
    expect(distroOf('ID=arch\n')).toBe('archlinux')
    expect(distroOf('ID_LIKE=debian\n')).toBe('unknown')
  })
})
