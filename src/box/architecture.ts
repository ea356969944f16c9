import {badInput} from '../errors.js'
import {ARCHITECTURES} from './catalog.js'

/**
 * A guest architecture, named as Vagrant 2.4 names them (`architecture` in metadata.json and
 * catalogs: Vagrant::Util::Platform.architecture). "unknown" declares none.
 */
export type Architecture = Exclude<(typeof ARCHITECTURES)[number], 'unknown'>

/** One place a box says what architecture its VM is, e.g. metadata.json or the OVF. */
export interface ArchitectureClaim {
  architecture: Architecture
  /** Where it was read, for messages: `metadata.json ("architecture": "arm64")`. */
  source: string
}

const ALIASES: Partial<Record<string, Architecture>> = {
  amd64: 'amd64', x86_64: 'amd64', x64: 'amd64',
  i386: 'i386', i686: 'i386', x86: 'i386',
  arm64: 'arm64', aarch64: 'arm64',
  arm: 'arm', armhf: 'arm',
}

/** An architecture name as Vagrant, VirtualBox or Debian write it, or undefined when it is none of them. */
export function architectureNamed(name: string): Architecture | undefined {
  const lower = name.trim().toLowerCase()
  const vagrant = ARCHITECTURES.find((known) => known === lower && known !== 'unknown')
  return ALIASES[lower] ?? (vagrant as Architecture | undefined)
}

/**
 * The one architecture a box's declarations agree on, or undefined when nothing declares one.
 * Two declarations that differ refuse the box (`BOX_ARCH_CONFLICT`), naming both: a box
 * labelled amd64 whose machine is arm64 would boot nowhere it is sent.
 */
export function agreedArchitecture(claims: ArchitectureClaim[]): Architecture | undefined {
  const [first, ...rest] = claims
  if (!first) return undefined
  const other = rest.find((claim) => claim.architecture !== first.architecture)
  if (other) {
    throw badInput('BOX_ARCH_CONFLICT', `The box contradicts itself: ${first.source} says ${first.architecture}, but ${other.source} says ${other.architecture}.`, [
      'Package the VM again with "vagrant package" (Vagrant 2.4 writes the architecture of the machine it packaged), or correct "architecture" in metadata.json.',
    ])
  }
  return first.architecture
}
