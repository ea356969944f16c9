// scripts/test-box.sh, the cache of the real test boxes: which recipe an --arch and --firmware
// name, and which files make up each recipe's hash (a box is rebuilt when, and only when, a file
// its recipe reads changes). Run on a copy of the recipes with no built shien, so that the
// script names the box it would build and stops there, building nothing.
import {appendFileSync, cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {REPO_ROOT} from '../../support/cli.js'
import {tempDir} from '../../support/make-box.js'

let repo: string
let cache: string
let cleanup: () => Promise<void>

beforeAll(async () => {
  let dir: string
  ;({dir, cleanup} = await tempDir())
  repo = join(dir, 'repo')
  cache = join(dir, 'cache')
  for (const path of ['scripts/test-box.sh', 'boxes', 'test/fixtures/vagrant-insecure', 'templates/vagrant-insecure-keys.pub']) {
    cpSync(join(REPO_ROOT, path), join(repo, path), {recursive: true})
  }
})
afterAll(() => cleanup())

const run = (...args: string[]) => execa('bash', [join(repo, 'scripts/test-box.sh'), ...args], {env: {SHIEN_CACHE: cache}, reject: false})

/** The box the script would build for these arguments (it stops there: shien is not built). */
async function boxFor(...args: string[]): Promise<string> {
  const result = await run(...args)
  expect(result.stderr).toContain('shien is not built')
  const named = /test-box\.sh: building (\S+)/.exec(result.stderr)?.[1]
  if (!named) throw new Error(`no box named: ${result.stderr}`)
  return named.slice(join(cache, 'boxes').length + 1)
}

const KINDS = {bios: ['--arch', 'amd64'], efi: ['--arch', 'amd64', '--firmware', 'efi'], arm64: ['--arch', 'arm64']}
type Kind = keyof typeof KINDS

async function allBoxes(): Promise<Record<Kind, string>> {
  return {bios: await boxFor(...KINDS.bios), efi: await boxFor(...KINDS.efi), arm64: await boxFor(...KINDS.arm64)}
}

/** Which boxes get a new name when `path` (in the copied repository) changes. */
async function changedBy(path: string): Promise<Kind[]> {
  const before = await allBoxes()
  appendFileSync(join(repo, path), '\n# changed\n')
  const after = await allBoxes()
  return (Object.keys(before) as Kind[]).filter((kind) => before[kind] !== after[kind])
}

/** The first file under `path`, or `path` itself when it is a file. */
function aFileIn(path: string): string {
  if (!statSync(join(repo, path)).isDirectory()) return path
  const entries = readdirSync(join(repo, path), {recursive: true, encoding: 'utf8'}).sort()
  return join(path, entries.find((e) => statSync(join(repo, path, e)).isFile())!)
}

describe('scripts/test-box.sh', () => {
  it('names each recipe\'s box by architecture and firmware', async () => {
    const boxes = await allBoxes()
    expect(boxes.bios).toMatch(/^debian-12-[0-9a-f]{16}\.box$/)
    expect(boxes.efi).toMatch(/^debian-12-efi-[0-9a-f]{16}\.box$/)
    expect(boxes.arm64).toMatch(/^debian-12-arm64-[0-9a-f]{16}\.box$/)
    expect(await boxFor('--arch', 'amd64', '--firmware', 'bios')).toBe(boxes.bios)
    expect(await boxFor('--arch', 'arm64', '--firmware', 'efi')).toBe(boxes.arm64)
    expect(await boxFor()).toBe(boxes.bios)
  })

  it('refuses a firmware an architecture has no box for, and an unknown one, building nothing', async () => {
    const armBios = await run('--arch', 'arm64', '--firmware', 'bios')
    expect(armBios.exitCode).toBe(2)
    expect(armBios.stderr).toMatch(/no BIOS box for arm64/)
    const unknown = await run('--firmware', 'uefi')
    expect(unknown.exitCode).toBe(2)
    expect(unknown.stderr).toMatch(/no firmware uefi; use bios or efi/)
    for (const result of [armBios, unknown]) expect(result.stderr).not.toContain('building')
  })

  it('gives a cached box without building it', async () => {
    const box = join(cache, 'boxes', await boxFor(...KINDS.efi))
    writeFileSync(box, 'a box')
    writeFileSync(`${box}.built`, 'Built')
    const result = await run(...KINDS.efi)
    rmSync(box)
    rmSync(`${box}.built`)
    expect(result.exitCode, result.stderr).toBe(0)
    expect(result.stdout).toBe(box)
    expect(result.stderr).toBe('')
  })

  it('hashes the shared UEFI build into both UEFI boxes and not into the BIOS box', async () => {
    for (const file of readdirSync(join(repo, 'boxes/lib'))) expect(await changedBy(join('boxes/lib', file))).toEqual(['efi', 'arm64'])
  })

  it('hashes each recipe\'s own files into its box only', async () => {
    expect(await changedBy('boxes/debian-12-efi/box.ovf.in')).toEqual(['efi'])
    expect(await changedBy('boxes/debian-12-efi/build.sh')).toEqual(['efi'])
    expect(await changedBy('boxes/debian-12-arm64/box.ovf.in')).toEqual(['arm64'])
    expect(await changedBy('boxes/debian-12-arm64/rootfs/etc/initramfs-tools/modules')).toEqual(['arm64'])
    expect(await changedBy('boxes/debian-12/extlinux.conf.in')).toEqual(['bios'])
  })

  it('hashes every file the UEFI build takes from debian-12 into all three boxes', async () => {
    // What the shared build reads from boxes/debian-12 ($base_dir), as it names it.
    const taken = [...readFileSync(join(repo, 'boxes/lib/debian-12-uefi.sh'), 'utf8').matchAll(/\$base_dir\/([\w.-]+)/g)].map((m) => m[1])
    expect(new Set(taken)).toEqual(new Set(['rootfs', 'Vagrantfile.in']))
    for (const path of new Set(taken)) expect(await changedBy(aFileIn(join('boxes/debian-12', path)))).toEqual(['bios', 'efi', 'arm64'])
  })

  it('hashes the insecure keys into every box', async () => {
    expect(await changedBy('templates/vagrant-insecure-keys.pub')).toEqual(['bios', 'efi', 'arm64'])
    mkdirSync(join(repo, 'unrelated'))
    writeFileSync(join(repo, 'unrelated/file'), 'x')
    expect(await changedBy('unrelated/file')).toEqual([])
  })
})
