import {ShienError} from '../../errors.js'
import type {CatalogProvider, CatalogVersion} from '../catalog.js'

// One catalog version holds a box per (provider, architecture) pair, the way Vagrant 2.4 reads
// catalogs (lib/vagrant/box_metadata.rb): for each provider it takes the entry whose
// `architecture` is the host's, else one of architecture "unknown" marked
// `default_architecture`, else the only entry of a catalog without architectures. Vagrant 2.3
// and older ignore both fields: they key the version's providers by name, so the LAST entry of
// a name wins (`Hash[[[name, a], [name, b]]]` is `{name => b}`). Hence, for each provider name,
// exactly one entry is the default and it comes after the others.

/** Which of this publish's providers already have a box of its architecture in the version. */
export interface PairCheck {
  /** Providers whose (provider, architecture) entry --force replaces. */
  replaced: string[]
  /** Providers that get their first entry of this architecture. */
  added: string[]
}

/**
 * Checks what publishing `architecture`'s box for `providers` does to the version `old`:
 * a pair that is there is VERSION_EXISTS (replaced with --force); a box of "unknown"
 * architecture, or an entry without any, cannot share a provider with another architecture.
 */
export function checkPairs(old: CatalogVersion | undefined, architecture: string, providers: string[], force: boolean, where: {name: string; catalog: string}): PairCheck {
  const replaced: string[] = []
  const added: string[] = []
  for (const provider of providers) {
    const entries = (old?.providers ?? []).filter((p) => p.name === provider)
    if (entries.some((p) => p.architecture === architecture)) replaced.push(provider)
    else if (entries.length > 0 && (architecture === 'unknown' || entries.some((p) => p.architecture === undefined || p.architecture === 'unknown'))) {
      throw unknownBeside(old!, provider, architecture, entries, where)
    } else added.push(provider)
  }
  if (replaced.length > 0 && !force) throw versionExists(old!, architecture, replaced, where)
  return {replaced, added}
}

/**
 * The version with this publish's entries (one per provider, all of one architecture): a
 * replaced pair keeps its place and default, a new one is the default only when its provider
 * had none. Then each provider's default entry is moved after its others, for Vagrant 2.3.
 */
export function versionWith(old: CatalogVersion | undefined, version: string, entries: CatalogProvider[]): CatalogVersion {
  const providers = [...(old?.providers ?? [])]
  for (const entry of entries) {
    const others = providers.filter((p) => p.name === entry.name && p.architecture !== entry.architecture)
    const at = providers.findIndex((p) => p.name === entry.name && p.architecture === entry.architecture)
    const isDefault = (at >= 0 && providers[at].default_architecture === true) || !others.some((p) => p.default_architecture === true)
    const next = {...entry, default_architecture: isDefault}
    if (at >= 0) providers[at] = next
    else providers.push(next)
  }
  // A stable sort: the order within defaults and within the others stays as it was.
  const ordered = [...providers.filter((p) => p.default_architecture !== true), ...providers.filter((p) => p.default_architecture === true)]
  return {...old, version, providers: ordered}
}

/** The architecture Vagrant 2.3 and older get for `provider`: the last entry of that name. */
export function olderVagrantGets(version: CatalogVersion, provider: string): string | undefined {
  const last = version.providers.filter((p) => p.name === provider).at(-1)
  return last && (last.architecture ?? 'unknown')
}

function versionExists(old: CatalogVersion, architecture: string, providers: string[], where: {name: string; catalog: string}): ShienError {
  return new ShienError(`${where.name} ${old.version} already has the ${architecture} box for ${providers.join(' and ')} (${where.catalog}).`, {
    code: 'VERSION_EXISTS', exit: 'refused',
    suggestions: [
      'Publish a newer version,',
      `or replace the ${architecture} box with --force before students have downloaded it (the version's other architectures stay).`,
    ],
  })
}

function unknownBeside(old: CatalogVersion, provider: string, architecture: string, entries: CatalogProvider[], where: {name: string; catalog: string}): ShienError {
  const there = entries.map((p) => (p.architecture === undefined ? 'one without an architecture' : `the ${p.architecture} one`)).join(' and ')
  const what = architecture === 'unknown' ? 'a box of unknown architecture' : `the ${architecture} box`
  return new ShienError(`${where.name} ${old.version} cannot list ${what} for ${provider} beside ${there} (${where.catalog}): shien cannot tell whether they are boxes for different machines.`, {
    code: 'VERSION_ARCH_UNKNOWN', exit: 'refused',
    suggestions: architecture === 'unknown'
      ? ['Publish the box with --architecture naming its architecture (e.g. arm64).']
      : ['Publish the boxes of each architecture as a new version: shien lists every box with its architecture.'],
  })
}
