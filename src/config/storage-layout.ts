import {join} from 'node:path'

import {checkAccount} from '../names.js'

/** Where an account's files live under the storage root. */
export function userPaths(storageRoot: string, account: string) {
  const home = join(storageRoot, 'users', checkAccount(account))
  return {
    home,
    incoming: join(home, 'incoming'),
    images: join(home, 'images'),
    image: (slot: string) => join(home, 'images', `${slot}.qcow2`),
    record: (slot: string) => join(home, 'images', `${slot}.json`),
    /** A UEFI VM's own variable store (ie-virsh makes it at define, as the account). */
    nvram: (slot: string) => join(home, 'images', `${slot}.vars.fd`),
    lock: join(home, '.lock'),
    /** Block manifests the account's pushes computed for bases published without one (docs/delta.md). */
    manifestCache: join(home, 'cache', 'manifests'),
  }
}

/**
 * The cluster's own folder on the storage, root's and closed to everyone else's writes
 * (docs/cluster.md): which blade each `<account>-<slot>` is defined on, one record a slot, and
 * the lock every blade takes to change them (flock, cluster-wide on GFS2); the drained blades;
 * the domains' XML.
 */
export function clusterPaths(storageRoot: string) {
  const dir = join(storageRoot, 'cluster')
  const slots = join(dir, 'slots')
  return {
    dir,
    slots,
    lock: join(dir, 'slots.lock'),
    /** One file a blade an admin drained for maintenance (`<blade>.json`). */
    drained: join(dir, 'drained'),
    /** Root's alone (0700): each defined domain's XML as ie-virsh defined it, for an admin's `recover`. */
    domains: join(dir, 'domains'),
    domainXml: (account: string, slot: string) => join(dir, 'domains', `${domainName(checkAccount(account), slot)}.xml`),
    record: (account: string, slot: string) => join(slots, `${domainName(checkAccount(account), slot)}.json`),
  }
}

/** The published bases of a storage root: `<root>/boxes/<org>/<name>/<version>/` (docs/instructors.md). */
export function boxesPaths(storageRoot: string) {
  const root = join(storageRoot, 'boxes')
  return {
    root,
    versionDir: (box: string, version: string) => join(root, ...box.split('/'), version),
  }
}

/** The files of a published version that delta pushes use (an amd64 box's; see {@link publishedFileNames}). */
export const BASE_IMAGE = 'libvirt.qcow2'
export const BASE_MANIFEST = 'libvirt.manifest'

/** The names of one architecture's files in a published version's folder. */
export interface PublishedFileNames {
  virtualbox: string
  libvirt: string
  /** The read-only qcow2 students' overlays are made on. */
  base: string
  /** The base's block manifest (docs/delta.md). */
  manifest: string
  /** What the base boots as, `{"architecture": "arm64", "firmware": "efi"}` (docs/delta.md). */
  platform: string
}

/**
 * One version holds a box per provider and architecture, so each architecture's files have
 * names of their own: amd64 keeps the names versions had before there were several (so
 * catalogs, URLs and students' overlays of those bases stay valid), and so does a box of
 * "unknown" architecture, which cannot share a version's provider with another; any other
 * architecture adds its name: `virtualbox-arm64.box`, `libvirt-arm64.qcow2`.
 */
export function publishedFileNames(architecture: string): PublishedFileNames {
  // The name goes into paths: only ever one of Vagrant's architecture names (checked before).
  if (!/^[a-z0-9]+$/.test(architecture)) throw new Error(`Internal error: "${architecture}" is not an architecture name.`)
  const suffix = architecture === 'amd64' || architecture === 'unknown' ? '' : `-${architecture}`
  return {
    virtualbox: `virtualbox${suffix}.box`,
    libvirt: `libvirt${suffix}.box`,
    base: `libvirt${suffix}.qcow2`,
    manifest: `libvirt${suffix}.manifest`,
    platform: `libvirt${suffix}.platform.json`,
  }
}

/** A published base's file name, of any architecture. */
export const BASE_IMAGE_NAME = /^libvirt(-[a-z0-9]+)?\.qcow2$/

export function domainName(account: string, slot: string): string {
  return `${account}-${slot}`
}
