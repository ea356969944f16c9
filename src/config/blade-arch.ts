import {existsSync} from 'node:fs'
import {machine} from 'node:os'

import {ShienError} from '../errors.js'

/** Guest architectures ie-virsh has templates for, named as libvirt and `uname -m` name them. */
export const GUEST_ARCHES = ['x86_64', 'aarch64'] as const
export type GuestArch = (typeof GUEST_ARCHES)[number]

/**
 * Which guest architectures a blade runs: `native` under KVM (the host's own architecture, where
 * /dev/kvm works), `emulated` under TCG (any architecture qemu emulates, many times slower).
 * An architecture in neither list is refused (BLADE_ARCH_UNSUPPORTED) before anything is uploaded.
 */
export interface ArchSettings {
  native: GuestArch[]
  emulated: GuestArch[]
}

/** What the blade's defaults are derived from; hostFacts() reads them, tests give their own. */
export interface HostFacts {
  /** `uname -m`. */
  machine: string
  /** Whether /dev/kvm exists. */
  kvm: boolean
  /** Whether `qemu-system-<arch>` is installed, for each guest architecture. */
  emulator: (arch: GuestArch) => boolean
}

export function hostFacts(): HostFacts {
  return {
    machine: machine(),
    kvm: existsSync('/dev/kvm'),
    emulator: (arch) => existsSync(`/usr/bin/qemu-system-${arch}`),
  }
}

/**
 * The guest architecture a VM of Vagrant's architecture runs as (an i386 system runs on x86_64),
 * or undefined for one ie-virsh has no template for (arm, ppc64le, ...).
 */
export function guestArchOf(vagrant: string): GuestArch | undefined {
  if (vagrant === 'amd64' || vagrant === 'i386') return 'x86_64'
  if (vagrant === 'arm64') return 'aarch64'
  return undefined
}

export function isGuestArch(value: unknown): value is GuestArch {
  return typeof value === 'string' && (GUEST_ARCHES as readonly string[]).includes(value)
}

/** What archSettings reads of the blade's config (config/blade-schema.ts: `arch`, `domainType`). */
export interface ArchConfig {
  arch?: {native?: readonly string[]; emulated?: readonly string[]}
  domainType: 'kvm' | 'qemu' | 'auto'
}

/**
 * The blade's architectures with the defaults filled in. By default the host's own architecture
 * is native when the host has /dev/kvm and the config does not force TCG (`domainType: "qemu"`),
 * and every architecture whose qemu-system emulator is installed, the host's own included when it
 * is not native, may run emulated. `arch.native` and `arch.emulated` in the config replace them.
 */
export function archSettings(config: ArchConfig, host: HostFacts): ArchSettings {
  const own = GUEST_ARCHES.find((arch) => arch === host.machine)
  const kvm = own !== undefined && host.kvm && config.domainType !== 'qemu'
  const native = configured(config.arch?.native, 'native') ?? (kvm ? [own] : [])
  const emulated = configured(config.arch?.emulated, 'emulated') ?? GUEST_ARCHES.filter((arch) => !native.includes(arch) && host.emulator(arch))
  return {native: [...native], emulated: emulated.filter((arch) => !native.includes(arch))}
}

/** How a blade runs an architecture: natively, emulated, or not at all. */
export function archMode(settings: ArchSettings, arch: GuestArch): 'native' | 'emulated' | undefined {
  if (settings.native.includes(arch)) return 'native'
  if (settings.emulated.includes(arch)) return 'emulated'
  return undefined
}

/** A configured list, checked: a misspelt architecture would otherwise refuse every push of it. */
function configured(list: unknown, key: string): GuestArch[] | undefined {
  if (list === undefined) return undefined
  if (!Array.isArray(list) || !list.every(isGuestArch)) {
    throw new ShienError(`arch.${key} in the blade configuration must be a list of ${GUEST_ARCHES.join(', ')}; it is ${JSON.stringify(list)}.`, {
      code: 'CONFIG_INVALID',
      suggestions: ['Ask an admin to correct "arch" in /etc/shien/config.json (docs/ie-virsh.md).'],
    })
  }
  return list
}
