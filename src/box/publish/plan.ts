import {homedir} from 'node:os'
import {isAbsolute, join, posix, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

import {badInput, ShienError} from '../../errors.js'
import {resolveSshTarget, type SshTarget} from '../../transport/ssh-target.js'
import {CATALOG_BOX_PATTERN} from '../../names.js'
import {publishedFileNames} from '../../config/storage-layout.js'
import {ARCHITECTURES} from '../catalog.js'
import {versionProblem} from '../catalog-version.js'

/** Where the files go: a local (or mounted shared) directory, or one on a host over SFTP. */
export type PublishDestination =
  | {kind: 'local'; root: string}
  | {kind: 'sftp'; spec: string; target: SshTarget; root: string}

/** Where a version is on the destination; publish and unpublish agree on them. */
export interface VersionPaths {
  catalog: string
  /** Held by a publish or an unpublish of the catalog while it runs. */
  lock: string
  versionDir: string
}

/** The catalog's paths on the destination and its URL, all decided before anything runs. */
export interface PublishLayout extends VersionPaths {
  urls: {catalog: string}
}

/**
 * One architecture's files in the version's folder (names: publishedFileNames), and the URLs
 * of its boxes; known once the box has been inspected.
 */
export interface ArchitectureFiles {
  virtualbox: string
  libvirt: string
  /** The qcow2 the blades keep read-only as the base of students' overlays. */
  base: string
  /** The base's block manifest (docs/delta.md), which delta pushes compare against. */
  manifest: string
  /** The base's architecture and firmware, which a delta push's overlay boots as. */
  platform: string
  urls: {virtualbox: string; libvirt: string}
}

export interface PublishPlan {
  box: string
  name: string
  version: string
  description?: string
  /** `--architecture`; without it, the one the box declares, else amd64. */
  architecture: string | undefined
  destination: PublishDestination
  baseUrl: string
  force: boolean
  libvirt: boolean
  acceptNewHostKey: boolean
  layout: PublishLayout
}

export interface PublishInput {
  box: string
  name: string
  version: string
  to: string
  baseUrl?: string
  description?: string
  architecture?: string
  force?: boolean
  libvirt?: boolean
  acceptNewHostKey?: boolean
  cwd: string
  home?: string
}

/** Checks every input and reports all problems at once; nothing is read or written yet. */
export function planPublish(input: PublishInput): PublishPlan {
  const problems = new Problems()
  problems.attempt(() => checkName(input.name))
  problems.attempt(() => checkVersion(input.version))
  const architecture = input.architecture
  if (architecture !== undefined) problems.attempt(() => checkArchitecture(architecture))
  const destination = problems.attempt(() => parseDestination(input.to, input.cwd, input.home ?? homedir()))
  const baseUrl = problems.attempt(() => chooseBaseUrl(input.baseUrl, destination))
  problems.throwIfAny('PUBLISH_BAD_INPUT', 'shien box publish')
  if (!destination || baseUrl === undefined) throw new Error('Internal error: a publish plan without a destination.')
  return {
    box: resolve(input.cwd, input.box),
    name: input.name,
    version: input.version,
    description: input.description,
    architecture,
    destination,
    baseUrl,
    force: input.force ?? false,
    libvirt: input.libvirt ?? true,
    acceptNewHostKey: input.acceptNewHostKey ?? false,
    layout: layoutFor(destination.root, baseUrl, input.name, input.version),
  }
}

/** The problems a plan's checks find, reported together: one as it is, several as one error. */
export class Problems {
  private readonly found: ShienError[] = []

  /** Runs a check; a ShienError it throws is kept and the value is undefined. */
  attempt<T>(check: () => T): T | undefined {
    try {
      return check()
    } catch (error) {
      if (!(error instanceof ShienError)) throw error
      this.found.push(error)
      return undefined
    }
  }

  throwIfAny(code: string, command: string): void {
    const {found} = this
    if (found.length === 1) throw found[0]
    if (found.length > 1) {
      throw badInput(code, `${command} cannot start:\n${found.map((p) => `  - ${p.message}`).join('\n')}`, found.flatMap((p) => p.suggestions))
    }
  }
}

/**
 * `<root>/<org>/<name>.json` is the catalog; each version has a folder with a box per provider
 * and architecture, and each architecture's libvirt disk as a plain qcow2
 * (`<root>/<org>/<name>/<version>/`, {@link architectureFiles}).
 */
export function layoutFor(root: string, baseUrl: string, name: string, version: string): PublishLayout {
  const [org, box] = name.split('/')
  return {...pathsFor(root, name, version), urls: {catalog: urlOf(baseUrl, org, `${box}.json`)}}
}

/** The paths of {@link layoutFor}, without the URL. */
export function pathsFor(root: string, name: string, version: string): VersionPaths {
  const [org, box] = name.split('/')
  return {
    catalog: posix.join(root, org, `${box}.json`),
    lock: posix.join(root, org, `.${box}.json.lock`),
    versionDir: posix.join(root, org, box, version),
  }
}

/** The files a publish of `architecture`'s box writes into the plan's version folder, and their URLs. */
export function architectureFiles(plan: Pick<PublishPlan, 'layout' | 'baseUrl' | 'name' | 'version'>, architecture: string): ArchitectureFiles {
  const names = publishedFileNames(architecture)
  const [org, box] = plan.name.split('/')
  const at = (file: string) => posix.join(plan.layout.versionDir, file)
  return {
    virtualbox: at(names.virtualbox),
    libvirt: at(names.libvirt),
    base: at(names.base),
    manifest: at(names.manifest),
    platform: at(names.platform),
    urls: {virtualbox: urlOf(plan.baseUrl, org, box, plan.version, names.virtualbox), libvirt: urlOf(plan.baseUrl, org, box, plan.version, names.libvirt)},
  }
}

const urlOf = (baseUrl: string, ...parts: string[]) => [baseUrl, ...parts.map(encodeURIComponent)].join('/')

export function checkName(name: string): void {
  if (!CATALOG_BOX_PATTERN.test(name)) {
    throw badInput('BAD_BOX_NAME', `"${name}" is not a box name: use ORG/NAME with lowercase letters, digits, ".", "-" and "_" (e.g. os101/debian12).`)
  }
}

export function checkVersion(version: string): void {
  const problem = versionProblem(version)
  if (problem) {
    throw badInput('BAD_VERSION', `Vagrant would not accept the version "${version}": ${problem}.`, ['Use a version such as 2026.1.0 (year.term.fix).'])
  }
}

function checkArchitecture(architecture: string): void {
  if (!(ARCHITECTURES as readonly string[]).includes(architecture)) {
    throw badInput('BAD_ARCHITECTURE', `"${architecture}" is not an architecture Vagrant knows (${ARCHITECTURES.join(', ')}).`)
  }
}

/** `sftp://[user@]host[:port]/abs/path`, a file:// URL, or a local path. */
export function parseDestination(to: string, cwd: string, home: string): PublishDestination {
  const sftp = /^sftp:\/\/([^/]+)(\/.*)?$/i.exec(to)
  if (sftp) {
    const root = posix.normalize(decodeURIComponent(sftp[2] ?? ''))
    if (!root.startsWith('/') || root === '/') {
      throw badInput('BAD_DESTINATION', `${to} names no folder: use sftp://[user@]host/absolute/path (e.g. sftp://blade/gfs2/shien/boxes).`)
    }
    const target = resolveSshTarget(sftp[1], {home})
    return {kind: 'sftp', spec: to, target, root: root.replace(/\/$/, '')}
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(to) && !/^file:\/\//i.test(to)) {
    throw badInput('BAD_DESTINATION', `shien publishes to a folder or to sftp://host/path, not to ${to}.`)
  }
  const path = /^file:\/\//i.test(to) ? fileURLToPath(to) : to
  return {kind: 'local', root: isAbsolute(path) ? resolve(path) : resolve(cwd, path)}
}

function chooseBaseUrl(given: string | undefined, destination: PublishDestination | undefined): string {
  if (given !== undefined) {
    let url: URL
    try {
      url = new URL(given)
    } catch {
      throw badInput('BAD_BASE_URL', `--base-url ${given} is not a URL.`, ['Give the URL the folder is served at, e.g. https://blade.example/boxes.'])
    }
    if (!['http:', 'https:', 'file:'].includes(url.protocol)) {
      throw badInput('BAD_BASE_URL', `--base-url ${given} is not an http, https or file URL, which are what Vagrant downloads boxes from.`)
    }
    return given.replace(/\/+$/, '')
  }
  if (destination?.kind === 'sftp') {
    throw badInput('BAD_BASE_URL', `--base-url is needed with ${destination.spec}: the URL students download the folder from.`, [
      'Add e.g. --base-url https://blade.example/boxes (templates/nginx-boxes.conf serves it).',
    ])
  }
  // A shared folder that students see at the same path: file:// URLs work as they are.
  return destination ? `file://${destination.root.split('/').map(encodeURIComponent).join('/')}` : ''
}
