import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'

import {REPO_ROOT} from './cli.js'

/** The package as `npm pack` makes it from the built clone, and what npm says is in it. */
export interface NpmPackage {
  tarball: string
  name: string
  version: string
  files: string[]
}

let npmPackageMade: Promise<NpmPackage> | undefined

/** `npm pack` of this clone (dist/ built by the test command), once per run, into a temp folder. */
export function npmPackage(): Promise<NpmPackage> {
  npmPackageMade ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shien-npm-pack-'))
    const {stdout} = await execa('npm', ['pack', '--json', '--pack-destination', dir], {cwd: REPO_ROOT})
    const [packed] = JSON.parse(stdout) as Array<{filename: string; name: string; version: string; files: Array<{path: string}>}>
    return {tarball: join(dir, packed.filename), name: packed.name, version: packed.version, files: packed.files.map((f) => f.path)}
  })()
  return npmPackageMade
}

/** The standalone tarballs `npm run pack` makes, with their SHA256SUMS and Homebrew formulas. */
export interface Standalone {
  dir: string
  tarballs: Record<string, string>
  sums: Record<string, string>
  formulaDir: string
}

/** Where packaging/pack.mjs keeps Node, and this helper the tarballs (outside the clone). */
async function cacheDir(): Promise<string> {
  const {cacheDir: dir} = (await import(join(REPO_ROOT, 'packaging', 'pack.mjs'))) as {cacheDir: () => string}
  return dir()
}

/**
 * The standalone tarballs of this clone, made by packaging/pack.mjs from `npm pack`'s tarball.
 * They take a minute to build, so they are kept in <cache>/pack/<key>, the key a hash of all that
 * goes into them (the npm tarball, the lock file, packaging/, the oclif that packs); a new key
 * replaces the older ones.
 */
export async function standaloneTarballs(): Promise<Standalone> {
  const pkg = await npmPackage()
  const hash = createHash('sha256')
  const inputs: Array<[string, string]> = [
    ['npm package', pkg.tarball],
    ['package-lock.json', join(REPO_ROOT, 'package-lock.json')],
    ['oclif', join(REPO_ROOT, 'node_modules', 'oclif', 'package.json')],
  ]
  for (const name of readdirSync(join(REPO_ROOT, 'packaging')).filter((n) => /\.(mjs|json)$/.test(n)).sort()) inputs.push([name, join(REPO_ROOT, 'packaging', name)])
  for (const [label, path] of inputs) hash.update(`${label}\0`).update(readFileSync(path))
  const key = hash.digest('hex').slice(0, 32)

  const root = join(await cacheDir(), 'pack')
  const dir = join(root, key)
  if (!existsSync(join(dir, 'SHA256SUMS'))) {
    mkdirSync(root, {recursive: true})
    const stage = mkdtempSync(join(root, '.new-'))
    await execa('node', [join(REPO_ROOT, 'packaging', 'pack.mjs'), '--tarball', pkg.tarball, '--out', stage, '--formula-dir', join(stage, 'homebrew')], {cwd: REPO_ROOT})
    for (const old of readdirSync(root)) if (old !== key && !old.startsWith('.new-')) rmSync(join(root, old), {recursive: true, force: true})
    rmSync(dir, {recursive: true, force: true})
    renameSync(stage, dir)
  }

  const sums: Record<string, string> = {}
  const tarballs: Record<string, string> = {}
  for (const line of readFileSync(join(dir, 'SHA256SUMS'), 'utf8').trim().split('\n')) {
    const [sum, file] = line.split(/\s+/)
    const target = /-([a-z0-9]+-[a-z0-9]+)\.tar\.gz$/.exec(file)![1]
    sums[file] = sum
    tarballs[target] = join(dir, file)
  }
  return {dir, tarballs, sums, formulaDir: join(dir, 'homebrew')}
}

/**
 * `npm install -g` of the npm package into a prefix of its own, as a student runs it (install
 * scripts too: ssh2 builds its optional native parts, which takes most of a minute). Kept in
 * <cache>/npm-prefix/<key>, the key a hash of the tarball, the lock file and this node's version.
 */
export async function npmInstalledPrefix(): Promise<string> {
  const pkg = await npmPackage()
  const hash = createHash('sha256').update(readFileSync(pkg.tarball)).update(readFileSync(join(REPO_ROOT, 'package-lock.json'))).update(process.version)
  const key = hash.digest('hex').slice(0, 32)
  const root = join(await cacheDir(), 'npm-prefix')
  const dir = join(root, key)
  if (!existsSync(join(dir, 'bin'))) {
    mkdirSync(root, {recursive: true})
    const stage = mkdtempSync(join(root, '.new-'))
    await execa('npm', ['install', '-g', '--prefix', stage, '--prefer-offline', '--no-audit', '--no-fund', pkg.tarball], {env: {npm_config_update_notifier: 'false'}})
    for (const old of readdirSync(root)) if (old !== key && !old.startsWith('.new-')) rmSync(join(root, old), {recursive: true, force: true})
    rmSync(dir, {recursive: true, force: true})
    renameSync(stage, dir)
  }
  return dir
}

export const sha256File = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex')
