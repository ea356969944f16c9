#!/usr/bin/env node
// `npm run pack` (after `npm run build`): standalone tarballs of shien with Node bundled, made by
// `oclif pack tarballs` for the targets in package.json (oclif.update.node), their SHA256SUMS,
// and the Homebrew formulas that install the darwin ones.
//
// oclif takes Node from nodejs.org unless tmp/cache/node-v<version>-<platform>-<arch>/node is
// already there (oclif's tarballs/node.js). That file is put there from the npm registry's
// packages that packaging/node.json pins: each package's tarball must have the integrity the
// registry gives for it and the one pinned; the node binary is kept outside the clone, keyed by
// that integrity ($SHIEN_CACHE_DIR, else $XDG_CACHE_HOME/shien, else ~/.cache/shien), so a
// second pack reads nothing from the network for Node.
//
//   node packaging/pack.mjs [--targets T,...] [--tarball NPM_TGZ] [--out DIR] [--formula-dir DIR]
//
//   --targets      some of package.json's targets (default: all of them)
//   --tarball      the package as `npm pack` made it (default: npm pack of this clone)
//   --out          where the tarballs (shien-vVERSION-TARGET.tar.gz) and SHA256SUMS go
//                  (default: dist-pack/, git-ignored)
//   --formula-dir  where shien.rb and shien@VERSION.rb go (default: packaging/homebrew/); they
//                  are written only when both darwin targets were built
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {homedir, tmpdir} from 'node:os'
import {basename, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseArgs} from 'node:util'

import {releaseFormulas} from './formula.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const readJson = (path) => JSON.parse(readFileSync(path, 'utf8'))

class PackError extends Error {}

function die(message) {
  throw new PackError(message)
}

const say = (message) => process.stderr.write(`pack: ${message}\n`)

/** sha512 of a file in npm's integrity form (`sha512-<base64>`). */
function integrityOf(path) {
  return `sha512-${createHash('sha512').update(readFileSync(path)).digest('base64')}`
}

const sha256Of = (path) => createHash('sha256').update(readFileSync(path)).digest('hex')

function npm(args, opts = {}) {
  return execFileSync('npm', args, {encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...opts})
}

export function cacheDir() {
  if (process.env.SHIEN_CACHE_DIR) return process.env.SHIEN_CACHE_DIR
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'shien')
}

/**
 * The node binary of one target, from the cache or else from the npm registry, after checking
 * the package tarball against the registry's integrity and the pin.
 */
export function nodeBinary(target, version, pin) {
  const key = createHash('sha256').update(pin.integrity).digest('hex').slice(0, 32)
  const dir = join(cacheDir(), 'node', `${pin.package}-${version}-${key}`)
  const binary = join(dir, 'node')
  if (existsSync(binary)) return binary

  const spec = `${pin.package}@${version}`
  say(`${target}: Node ${version} from the npm registry (${spec})`)
  const work = mkdtempSync(join(tmpdir(), 'shien-node-'))
  try {
    const registry = npm(['view', spec, 'dist.integrity']).trim()
    if (registry !== pin.integrity) die(`the registry gives ${spec} the integrity ${registry}, packaging/node.json pins ${pin.integrity}`)
    const [packed] = JSON.parse(npm(['pack', spec, '--json', '--pack-destination', work], {cwd: work}))
    const tgz = join(work, packed.filename)
    const actual = integrityOf(tgz)
    if (actual !== pin.integrity) die(`${spec} downloaded with integrity ${actual}, expected ${pin.integrity}`)
    execFileSync('tar', ['-xzf', tgz, '-C', work, 'package/bin/node'])
    chmodSync(join(work, 'package/bin/node'), 0o755)
    mkdirSync(join(cacheDir(), 'node'), {recursive: true})
    const stage = mkdtempSync(join(cacheDir(), 'node', '.new-'))
    renameSync(join(work, 'package/bin/node'), join(stage, 'node'))
    writeFileSync(join(stage, 'integrity'), `${pin.integrity}\n`)
    // Another pack may have filled it meanwhile: theirs is as good as ours.
    if (existsSync(dir)) rmSync(stage, {recursive: true, force: true})
    else renameSync(stage, dir)
  } finally {
    rmSync(work, {recursive: true, force: true})
  }
  return binary
}

function main() {
  const {values} = parseArgs({
    options: {
      targets: {type: 'string'},
      tarball: {type: 'string'},
      out: {type: 'string', default: join(ROOT, 'dist-pack')},
      'formula-dir': {type: 'string', default: join(ROOT, 'packaging', 'homebrew')},
    },
  })
  const pkg = readJson(join(ROOT, 'package.json'))
  const nodePins = readJson(join(ROOT, 'packaging', 'node.json'))
  const release = readJson(join(ROOT, 'packaging', 'release.json'))
  const version = pkg.oclif.update.node.version
  if (nodePins.version !== version) die(`packaging/node.json pins Node ${nodePins.version}, package.json's oclif.update.node.version is ${version}`)
  const targets = values.targets ? values.targets.split(',') : pkg.oclif.update.node.targets
  for (const target of targets) {
    if (!pkg.oclif.update.node.targets.includes(target)) die(`${target} is not one of package.json's targets (${pkg.oclif.update.node.targets.join(', ')})`)
    if (!nodePins.targets[target]) die(`packaging/node.json pins no Node package for ${target}`)
  }
  if (!existsSync(join(ROOT, 'dist', 'commands', 'index.js'))) die('dist/ is not built: run npm run build first (npm run pack does)')

  // Where oclif looks before downloading (tarballs/node.js: <root>/tmp/cache/node-v<version>-<platform>-<arch>/node).
  const oclifTmp = join(ROOT, 'tmp')
  for (const target of targets) {
    const dest = join(oclifTmp, 'cache', `node-v${version}-${target}`)
    mkdirSync(dest, {recursive: true})
    copyFileSync(nodeBinary(target, version, nodePins.targets[target]), join(dest, 'node'))
    chmodSync(join(dest, 'node'), 0o755)
  }

  const work = mkdtempSync(join(tmpdir(), 'shien-pack-'))
  try {
    // oclif moves the tarball it is given into its workspace: give it a copy.
    let npmTarball = join(work, 'package.tgz')
    if (values.tarball) copyFileSync(values.tarball, npmTarball)
    else npmTarball = join(work, JSON.parse(npm(['pack', '--json', '--pack-destination', work], {cwd: ROOT}))[0].filename)

    const built = (name) => name.startsWith(`${pkg.oclif.bin}-v${pkg.version}-`) && name.endsWith('.tar.gz')
    for (const name of readdirSync(join(ROOT, 'dist')).filter(built)) rmSync(join(ROOT, 'dist', name))
    execFileSync(join(ROOT, 'node_modules', '.bin', 'oclif'), ['pack', 'tarballs', '--root', ROOT, '--targets', targets.join(','), '--no-xz', '--tarball', npmTarball], {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
      env: {
        ...process.env,
        // The workspace's `npm install --production`: the lock file's versions, from npm's cache
        // when it has them, and no install scripts, so that no native module built for this
        // machine ends up in another platform's tarball (ssh2 runs without its optional ones).
        npm_config_prefer_offline: 'true',
        npm_config_ignore_scripts: 'true',
        npm_config_audit: 'false',
        npm_config_fund: 'false',
        npm_config_update_notifier: 'false',
      },
    })

    mkdirSync(values.out, {recursive: true})
    const tarballs = {}
    for (const target of targets) {
      const name = readdirSync(join(ROOT, 'dist')).find((n) => built(n) && n.endsWith(`-${target}.tar.gz`))
      if (!name) die(`oclif made no tarball for ${target} in dist/`)
      // Without oclif's commit sha in the name, so that a release's URLs follow from its version.
      const file = `${pkg.oclif.bin}-v${pkg.version}-${target}.tar.gz`
      renameSync(join(ROOT, 'dist', name), join(values.out, file))
      tarballs[target] = {file, sha256: sha256Of(join(values.out, file))}
    }
    writeFileSync(join(values.out, 'SHA256SUMS'), targets.map((t) => `${tarballs[t].sha256}  ${tarballs[t].file}\n`).join(''))
    for (const target of targets) process.stdout.write(`${tarballs[target].sha256}  ${join(values.out, tarballs[target].file)}\n`)

    if (tarballs['darwin-arm64'] && tarballs['darwin-x64']) {
      const url = (file) => release.tarballUrl.replace('{version}', pkg.version).replace('{file}', file)
      const formulas = releaseFormulas({
        version: pkg.version,
        description: pkg.description,
        homepage: release.homepage,
        tap: release.homebrewTap,
        license: pkg.license,
        tarballs: Object.fromEntries(['darwin-arm64', 'darwin-x64'].map((t) => [t, {url: url(tarballs[t].file), sha256: tarballs[t].sha256}])),
      })
      mkdirSync(values['formula-dir'], {recursive: true})
      for (const [name, text] of Object.entries(formulas)) {
        writeFileSync(join(values['formula-dir'], name), text)
        say(`wrote ${join(values['formula-dir'], name)}`)
      }
    }
  } finally {
    rmSync(work, {recursive: true, force: true})
    // oclif's workspaces (a copy of the package per target) and the node copies.
    for (const name of [pkg.oclif.bin, ...targets, 'cache']) rmSync(join(oclifTmp, name), {recursive: true, force: true})
    if (existsSync(oclifTmp) && readdirSync(oclifTmp).length === 0) rmSync(oclifTmp, {recursive: true})
  }
}

if (process.argv[1] && basename(process.argv[1]) === 'pack.mjs') {
  try {
    main()
  } catch (error) {
    if (!(error instanceof PackError)) throw error
    process.stderr.write(`pack: ${error.message}\n`)
    process.exitCode = 1
  }
}
