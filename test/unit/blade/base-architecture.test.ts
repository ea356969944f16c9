/**
 * The blade's side of a delta push when a published version holds bases of several
 * architectures: the base step and apply-delta on a storage root laid out in a temp folder
 * (real qemu-img), picking the base of the box's architecture by its platform record, and the
 * overlay's record taking the base's firmware when the box declares none.
 */
import {chmod, copyFile, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {applyDelta} from '../../../src/blade/apply-delta.js'
import {findBase} from '../../../src/blade/base-box.js'
import {describeBase} from '../../../src/blade/base-manifest.js'
import {declaredIn, stagedRecord} from '../../../src/blade/slot-files.js'
import {boxesPaths} from '../../../src/config/storage-layout.js'
import {manifestOfImage} from '../../../src/delta/image-manifest.js'
import type {BlockManifest} from '../../../src/delta/manifest.js'
import {ShienError} from '../../../src/errors.js'
import {deltaBetween, makeBladeStorage, publishBase, STUDENT, type BladeStorage} from '../../support/delta-blade.js'
import {convertRaw} from '../../support/pattern-disk.js'

const BOX = 'os101/debian12'
const V1 = '2026.1.0'
const o = {student: STUDENT}

let s: BladeStorage
let versionDir: string
let amd64: {path: string; manifest: BlockManifest}
let arm64: {path: string; manifest: BlockManifest}

/** A small raw disk whose first bytes say `label`, as a qcow2. */
async function disk(name: string, label: string): Promise<string> {
  const raw = join(s.dir, `${name}.raw`)
  const bytes = Buffer.alloc(1024 * 1024)
  bytes.write(label, 0)
  bytes.write(label, 300_000)
  await writeFile(raw, bytes)
  return convertRaw(raw, join(s.dir, `${name}.qcow2`), 'qcow2')
}

/** Writes a published file as `shien box publish` leaves it: 0444, in the version's folder. */
async function published(name: string, text: string): Promise<void> {
  const path = join(versionDir, name)
  await rm(path, {force: true})
  await writeFile(path, text, {mode: 0o444})
}

beforeAll(async () => {
  s = await makeBladeStorage()
  const amdPath = await publishBase(s.root, BOX, V1, await disk('amd64', 'the amd64 base'))
  versionDir = boxesPaths(s.root).versionDir(BOX, V1)
  const armPath = join(versionDir, 'libvirt-arm64.qcow2')
  await copyFile(await disk('arm64', 'the arm64 base'), armPath)
  await chmod(armPath, 0o444)
  amd64 = {path: amdPath, manifest: await manifestOfImage(amdPath, {format: 'qcow2'})}
  arm64 = {path: armPath, manifest: await manifestOfImage(armPath, {format: 'qcow2'})}
  await published('libvirt.platform.json', '{"architecture":"amd64","firmware":"efi"}\n')
  await published('libvirt-arm64.platform.json', '{"architecture":"arm64","firmware":"efi"}\n')
}, 60_000)
afterAll(() => (s ? rm(s.dir, {recursive: true, force: true}) : undefined))

describe('the base step with several architectures in a version', () => {
  it('hands out the base of the architecture asked for, amd64 by default, with the firmware its record names', async () => {
    const arm = await describeBase(s.ctx, BOX, V1, {...o, architecture: 'arm64'})
    expect(arm).toMatchObject({available: true, architecture: 'arm64', firmware: 'efi', path: arm64.path, diskHash: arm64.manifest.diskHash.toString('hex')})
    const amd = await describeBase(s.ctx, BOX, V1, o)
    expect(amd).toMatchObject({available: true, architecture: 'amd64', firmware: 'efi', path: amd64.path, diskHash: amd64.manifest.diskHash.toString('hex')})
    expect(await describeBase(s.ctx, BOX, V1, {...o, architecture: 'i386'})).toEqual({available: false, reason: `${BOX} ${V1} has no i386 libvirt base (libvirt-i386.qcow2) on this blade`})
  })

  it('refuses an architecture that is not one of Vagrant\'s names before looking for any file', async () => {
    for (const architecture of ['../../../etc/passwd', 'ARM64', 'unknown', '']) {
      const error = await findBase(s.ctx, BOX, V1, {...o, architecture}).then(() => undefined, (e: unknown) => e)
      expect(error, architecture).toBeInstanceOf(ShienError)
      expect((error as ShienError).code).toBe('BAD_ARCHITECTURE')
    }
  })

  it('takes no base whose platform record names another architecture, or cannot be read', async () => {
    try {
      await published('libvirt-arm64.platform.json', '{"architecture":"amd64","firmware":"bios"}\n')
      expect(await describeBase(s.ctx, BOX, V1, {...o, architecture: 'arm64'})).toEqual({available: false, reason: `the published base ${arm64.path} is amd64, and the box is arm64`})
      await published('libvirt-arm64.platform.json', '{"architecture":"arm64","firmware":"coreboot"}\n')
      const broken = await describeBase(s.ctx, BOX, V1, {...o, architecture: 'arm64'})
      expect(broken).toMatchObject({available: false, reason: expect.stringContaining('is not a base\'s platform record')})
    } finally {
      await published('libvirt-arm64.platform.json', '{"architecture":"arm64","firmware":"efi"}\n')
    }
  })

  it('takes a base published without a record as its name says, with no firmware of its own', async () => {
    await rm(join(versionDir, 'libvirt.platform.json'))
    try {
      const found = await describeBase(s.ctx, BOX, V1, o)
      expect(found).toMatchObject({available: true, architecture: 'amd64', path: amd64.path})
      expect(found).not.toHaveProperty('firmware')
    } finally {
      await published('libvirt.platform.json', '{"architecture":"amd64","firmware":"efi"}\n')
    }
  })
})

describe('apply-delta on one architecture\'s base', () => {
  async function applyOn(base: {path: string; manifest: BlockManifest}, label: string, request: Partial<Parameters<typeof applyDelta>[1]>) {
    const next = await disk(`next-${label}`, `the student's ${label} disk`)
    await deltaBetween(base.manifest, next, join(s.ctx.paths.incoming, `${label}.delta`), s.dir)
    await applyDelta(s.ctx, {name: label, slot: '01', box: BOX, version: V1, ...request}, o)
    return JSON.parse(await readFile(stagedRecord(s.ctx, '01'), 'utf8')) as Record<string, unknown>
  }

  it('makes the overlay on the arm64 base and records the box\'s declared architecture', async () => {
    const record = await applyOn(arm64, 'arm', {architecture: 'arm64', architectureSource: 'metadata.json ("architecture": "arm64")'})
    expect(record.base).toMatchObject({path: arm64.path, diskHash: arm64.manifest.diskHash.toString('hex')})
    expect(declaredIn(record)).toEqual({declaredArchitecture: {architecture: 'arm64', source: 'metadata.json ("architecture": "arm64")'}, firmware: 'efi'})
  })

  it('records the firmware of a UEFI base for a box that declares none, and the box\'s own when it declares one', async () => {
    expect(declaredIn(await applyOn(amd64, 'uefi', {}))).toEqual({firmware: 'efi'})
    expect(declaredIn(await applyOn(amd64, 'bios', {firmware: 'bios'}))).toEqual({firmware: 'bios'})
  })

  it('refuses a delta made against the other architecture\'s base', async () => {
    const next = await disk('next-wrong', 'an amd64 disk')
    await deltaBetween(amd64.manifest, next, join(s.ctx.paths.incoming, 'wrong.delta'), s.dir)
    const error = await applyDelta(s.ctx, {name: 'wrong', slot: '02', box: BOX, version: V1, architecture: 'arm64'}, o).then(() => undefined, (e: unknown) => e)
    expect((error as ShienError).code).toBe('DELTA_WRONG_BASE')
  })
})
