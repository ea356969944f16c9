import {createHash} from 'node:crypto'
import {chmodSync, existsSync, readdirSync, readFileSync, utimesSync, writeFileSync} from 'node:fs'
import {mkdir, mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Readable} from 'node:stream'

import {afterAll, afterEach, beforeAll, beforeEach, describe, expect, it} from 'vitest'

import type {BladeClient} from '../../../src/client/blade-client.js'
import {encodeManifest} from '../../../src/delta/manifest.js'
import {manifestOfRawStream} from '../../../src/delta/manifest-builder.js'
import type {PipelineEvent} from '../../../src/pipeline/events.js'
import type {BaseChoice} from '../../../src/push/base-choice.js'
import type {PushStage} from '../../../src/push/context.js'
import type {PushPlan} from '../../../src/push/plan.js'
import {push} from '../../../src/push/push.js'
import {convertStage, defineStage, hardenStage, startStage} from '../../../src/push/stages-blade.js'
import {packageStage} from '../../../src/push/stages-local.js'
import {uploadStage} from '../../../src/push/stages-upload.js'
import type {BaseResult} from '../../../src/protocol/blade-steps.js'
import {applyDelta, deriveDisk, patternDisk, vmdkOfRaw} from '../../support/delta-disks.js'
import {makeBox, makeOvf} from '../../support/make-box.js'

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/**
 * The blade as a push sees it: the `shien blade` steps and ie-virsh as calls that are recorded,
 * and SFTP as files in memory, so the upload stage runs as it does against a real blade.
 */
class FakeBlade {
  calls: string[] = []
  files = new Map<string, Buffer>()
  base: BaseResult = {available: false, reason: 'the blade has no os101/debian12 2026.1.0'}
  failOn?: string
  flags = new Map<string, Record<string, unknown>>()

  async call<T>(step: string, flags: Record<string, unknown>): Promise<T> {
    this.flags.set(step, flags)
    this.calls.push(`blade ${step}${flags.action ? ` ${String(flags.action)}` : ''}${flags.kind ? ` ${String(flags.kind)}` : ''}`)
    if (this.failOn === step) throw new Error(`${step} failed`)
    const file = `/blade/incoming/${String(flags.name)}.${String(flags.kind ?? 'box')}`
    switch (step) {
      case 'base': return this.base as T
      case 'hash': return (flags.complete ? {prefix: sha(this.files.get(file)!), blocks: []} : {}) as T
      case 'prepare': return {partPath: `${file}.part`, boxPath: file, partSize: 0, boxSize: this.files.get(file)?.length ?? 0, freeBytes: 1e12, removedOld: []} as T
      case 'commit': {
        this.files.set(file, this.files.get(`${file}.part`)!)
        this.files.delete(`${file}.part`)
        return {boxPath: file, size: flags.size} as T
      }
      case 'convert':
      case 'apply-delta': return {image: '/x/.01.new.qcow2', disk: 'box-disk001.vmdk', virtualSize: 1, ignoredDisks: []} as T
      case 'harden': return {record: '/x/.01.json', report: {}, hostKeys: [VM_HOST_KEY]} as T
      case 'install': return (flags.action === 'rollback' ? {restored: false} : {}) as T
      default: return {} as T
    }
  }

  async virsh<T>(args: string[]): Promise<T> {
    this.calls.push(`ie-virsh ${args.join(' ')}`)
    const running = {slot: '01', name: 'e195701-01', state: 'running', sshPort: 22001, ssh: 'ssh -p 22001 vagrant@127.0.0.1'}
    return (args[0] === 'list' ? {account: 'e195701', limits: {vms: 4}, domains: this.calls.includes('ie-virsh start 01') ? [running] : []} : {}) as T
  }

  /** One SFTP channel over `files`: what uploadResumable uses of ssh2's SFTPWrapper. */
  sftp() {
    type Cb<T = unknown> = (error: Error | null, value?: T) => void
    return {
      lstat: (path: string, cb: Cb) => {
        const file = this.files.get(path)
        if (file) cb(null, {size: file.length, isFile: () => true})
        else cb(Object.assign(new Error('No such file'), {code: 2}))
      },
      open: (path: string, flags: string, attrs: unknown, cb?: Cb) => {
        if (flags === 'w' || !this.files.has(path)) this.files.set(path, Buffer.alloc(0))
        ;((cb ?? attrs) as Cb)(null, Buffer.from(path))
      },
      write: (handle: Buffer, data: Buffer, offset: number, length: number, position: number, cb: Cb) => {
        const path = handle.toString()
        let file = this.files.get(path)!
        if (file.length < position + length) file = Buffer.concat([file, Buffer.alloc(position + length - file.length)])
        data.copy(file, position, offset, offset + length)
        this.files.set(path, file)
        cb(null)
      },
      close: (_handle: Buffer, cb: Cb) => cb(null),
      end: () => undefined,
      // The channel never closes under the upload here.
      once: () => undefined,
      off: () => undefined,
    }
  }
}

/** Stands in for the connect stage: the fake blade, without SSH. */
function fakeConnect(blade: FakeBlade): PushStage {
  return {
    id: 'connect',
    async run(ctx) {
      const connection = {client: {sftp: (cb: (e: Error | null, s: unknown) => void) => cb(null, blade.sftp())}, close: () => undefined}
      ctx.out.connect = {connection, blade: blade as unknown as BladeClient, publicKey: 'ssh-ed25519 AAAA student', slotState: {limit: 4, defined: false, running: false}} as never
    },
  }
}

let dir: string
let base: Buffer
let student: Buffer
let studentBox: Buffer
let available: BaseResult
const savedPath = process.env.PATH

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shien-delta-push-'))
  base = await patternDisk(dir)
  student = deriveDisk(base)
  const boxPath = await makeBox(dir, 'student.box', {disks: [{name: 'box-disk001.vmdk', bytes: vmdkOfRaw(student), capacityBytes: student.length}]})
  studentBox = readFileSync(boxPath)
  const manifest = await manifestOfRawStream(Readable.from([base]), base.length)
  available = {
    available: true, box: 'os101/debian12', version: '2026.1.0', path: '/srv/boxes/os101/debian12/2026.1.0/libvirt.qcow2',
    virtualSize: base.length, diskHash: manifest.diskHash.toString('hex'), manifest: encodeManifest(manifest).toString('base64'),
  }
  // A `vagrant` that packages the student's box and counts how often it ran.
  await mkdir(join(dir, 'bin'))
  writeFileSync(join(dir, 'bin', 'vagrant'), `#!/bin/sh\necho run >> "${dir}/vagrant-runs"\ncp "${boxPath}" "$3"\n`)
  chmodSync(join(dir, 'bin', 'vagrant'), 0o755)
})
afterAll(() => rm(dir, {recursive: true, force: true}))

let project: string
beforeEach(async () => {
  project = await mkdtemp(join(dir, 'project-'))
  process.env.PATH = `${join(dir, 'bin')}:${savedPath}`
  await rm(join(dir, 'vagrant-runs'), {force: true})
  await rm(join(dir, 'known_hosts'), {force: true})
})
afterEach(() => {
  process.env.PATH = savedPath
})

// The public half of the host key harden made for the VM, as the blade's reply carries it.
const VM_HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAWhHpLPd4VmqxU2Hb1z0tLTm2NnYfJ0xQ4ryi3kG7t3'

const OS101: BaseChoice = {kind: 'base', box: 'os101/debian12', version: '2026.1.0', from: 'box_meta'}

function planFor(o: {base?: BaseChoice; boxPath?: string; repackage?: boolean} = {}): PushPlan {
  return {
    boxPath: o.boxPath,
    projectDir: project,
    name: 'web',
    slot: '01',
    target: {user: 'e195701', alias: 'blade', hostName: 'blade1.example', port: 22, userKnownHostsFiles: [join(dir, 'known_hosts')], identityFiles: [], hashKnownHosts: false} as unknown as PushPlan['target'],
    naming: {bladeSpec: 'blade', home: dir},
    knownHostsPath: '/dev/null',
    replace: false,
    bladeCommand: 'shien',
    acceptNewHostKey: false,
    base: o.base ?? OS101,
    keepDir: o.boxPath ? undefined : join(project, '.vagrant', 'shien'),
    repackage: o.repackage ?? false,
    start: true,
  }
}

async function pushWith(blade: FakeBlade, plan: PushPlan) {
  const events: PipelineEvent[] = []
  const stages = [fakeConnect(blade), packageStage, uploadStage, convertStage, hardenStage, defineStage, startStage]
  const run = push(plan, {signal: new AbortController().signal, onEvent: (e) => events.push(e), confirmHostKey: async () => false, channels: 2, stages})
  const notes = () => events.flatMap((e) => (e.type === 'note' ? [e.message] : []))
  return {result: await run.catch((error: unknown) => ({error})), notes: notes(), events}
}

const vagrantRuns = () => (existsSync(join(dir, 'vagrant-runs')) ? readFileSync(join(dir, 'vagrant-runs'), 'utf8').split('\n').filter(Boolean).length : 0)

describe('a delta push, over a fake blade', () => {
  it('sends the changed blocks when the blade has the base, and applies them instead of converting', async () => {
    const blade = new FakeBlade()
    blade.base = available
    const {result, notes, events} = await pushWith(blade, planFor())
    if ('error' in result) throw result.error
    expect(blade.calls).toEqual([
      'blade base', 'blade prepare delta', 'blade commit delta',
      'blade apply-delta', 'blade harden', 'blade install install', 'ie-virsh define 01', 'ie-virsh start 01', 'ie-virsh list', 'blade install tidy',
    ])
    // What arrived on the blade is a delta that turns the base into the student's disk.
    const arrived = blade.files.get('/blade/incoming/web.delta')!
    const copy = join(dir, 'arrived.delta')
    writeFileSync(copy, arrived)
    expect((await applyDelta(base, copy)).disk.equals(student)).toBe(true)
    expect(result.box).toMatchObject({sha256: sha(arrived), size: arrived.length, sent: arrived.length, reused: false})
    expect(blade.flags.get('base')).toEqual({box: 'os101/debian12', version: '2026.1.0'})
    expect(blade.flags.get('apply-delta')).toEqual({name: 'web', slot: '01', box: 'os101/debian12', version: '2026.1.0', sha256: sha(arrived), 'public-key': expect.stringMatching(/^ssh-/)})
    expect(result.delta).toEqual({used: true, base: 'os101/debian12', version: '2026.1.0', bytes: arrived.length, changedBlocks: 3, zeroedBlocks: 1, virtualSize: base.length})
    expect(notes).toContainEqual(expect.stringMatching(/^delta against os101\/debian12 2026\.1\.0: \d+ KiB of 10 MiB to send \(the whole box is \d+ KiB\)$/))
    expect(events).toContainEqual(expect.objectContaining({type: 'progress', stage: 'delta', bytes: base.length, total: base.length}))
    expect(result.timings.map((t) => t.stage)).toEqual(['package', 'upload', 'convert', 'harden', 'define', 'start'])
    // The VM's new host keys are recorded under its alias, and the login names that alias.
    const alias = 'shien-e195701-01.blade1.example'
    expect(result.hostKeys).toEqual({recorded: true, alias, path: join(dir, 'known_hosts'), keys: 1, replaced: 0})
    expect(readFileSync(join(dir, 'known_hosts'), 'utf8')).toBe(`${alias} ${VM_HOST_KEY}\n`)
    expect(result.login).toBe('shien vm ssh 01')
    expect(result.ssh).toBe(`ssh -J blade -p 22001 -o HostKeyAlias=${alias} -o UserKnownHostsFile=${join(dir, 'known_hosts')} vagrant@127.0.0.1`)
    // A push that succeeded leaves nothing in the project.
    expect(existsSync(join(project, '.vagrant', 'shien'))).toBe(false)
  })

  it('sends nothing again after a failure past the upload: the delta in place is the same, byte for byte', async () => {
    const blade = new FakeBlade()
    blade.base = available
    blade.failOn = 'apply-delta'
    const first = await pushWith(blade, planFor())
    expect(first.result).toMatchObject({error: {message: 'apply-delta failed'}})
    blade.failOn = undefined
    blade.calls.length = 0
    const {result, notes} = await pushWith(blade, planFor())
    if ('error' in result) throw result.error
    const arrived = blade.files.get('/blade/incoming/web.delta')!
    expect(blade.calls.slice(0, 4)).toEqual(['blade base', 'blade prepare delta', 'blade hash delta', 'blade apply-delta'])
    expect(blade.flags.get('hash')).toMatchObject({name: 'web', kind: 'delta', complete: true, prefix: arrived.length})
    expect(result.box).toMatchObject({sha256: sha(arrived), size: arrived.length, sent: 0, resumedFrom: arrived.length})
    expect(notes).toContain('the blade has this delta from the last try: nothing to send')
  })

  it('sends the whole box, with one line saying why, when the blade lacks the base', async () => {
    const blade = new FakeBlade()
    const {result, notes} = await pushWith(blade, planFor())
    if ('error' in result) throw result.error
    expect(notes).toContain('sending the whole box: the blade has no os101/debian12 2026.1.0')
    expect(blade.calls.slice(0, 4)).toEqual(['blade base', 'blade prepare', 'blade commit', 'blade convert'])
    expect(blade.files.get('/blade/incoming/web.box')!.equals(studentBox)).toBe(true)
    expect(result.delta).toEqual({used: false, reason: 'the blade has no os101/debian12 2026.1.0'})
  })

  it('sends the whole box when no base applies, or with --full without asking the blade', async () => {
    for (const [choice, note] of [
      [{kind: 'none', reason: 'the project\'s box "my-box" is not a catalog box (ORG/NAME)'}, 'sending the whole box: the project\'s box "my-box" is not a catalog box (ORG/NAME)'],
      [{kind: 'full'}, undefined],
    ] as Array<[BaseChoice, string | undefined]>) {
      const blade = new FakeBlade()
      blade.base = available
      const {result, notes} = await pushWith(blade, planFor({base: choice}))
      if ('error' in result) throw result.error
      expect(blade.calls).not.toContain('blade base')
      expect(blade.calls).toContain('blade convert')
      expect(notes.filter((n) => n.startsWith('sending the whole box'))).toEqual(note ? [note] : [])
    }
  })

  it('sends the whole box when the blade\'s base is of another size or its manifest is broken', async () => {
    const other = await manifestOfRawStream(Readable.from([Buffer.alloc(base.length * 2)]), base.length * 2)
    const cases: Array<[BaseResult, RegExp]> = [
      [{...available, virtualSize: other.virtualSize, diskHash: other.diskHash.toString('hex'), manifest: encodeManifest(other).toString('base64')}, /the box's disk is 10 MiB and os101\/debian12 2026.1.0's is 20 MiB/],
      [{...available, manifest: Buffer.from('SHIENBMF broken').toString('base64')}, /^sending the whole box: Cannot use the blade's manifest of os101\/debian12 2026.1.0: it is 15 bytes/],
      [{...available, diskHash: '00'.repeat(32)}, /does not match the disk it describes/],
    ]
    for (const [answer, note] of cases) {
      const blade = new FakeBlade()
      blade.base = answer
      const {result, notes} = await pushWith(blade, planFor())
      if ('error' in result) throw result.error
      expect(notes).toContainEqual(expect.stringMatching(note))
      expect(blade.calls).toContain('blade convert')
    }
  })

  it('keeps the packaged box and the delta after a failure, and a re-run reuses both', async () => {
    const blade = new FakeBlade()
    blade.base = available
    blade.failOn = 'harden'
    const first = await pushWith(blade, planFor())
    expect(first.result).toMatchObject({error: expect.objectContaining({message: 'harden failed'})})
    expect(vagrantRuns()).toBe(1)
    expect(readdirSync(join(project, '.vagrant', 'shien')).sort()).toEqual(['web.box', 'web.delta', 'web.delta.json'])

    blade.failOn = undefined
    const again = await pushWith(blade, planFor())
    if ('error' in again.result) throw again.result.error
    expect(vagrantRuns()).toBe(1)
    expect(again.notes).toContainEqual(expect.stringMatching(/^reusing \.vagrant\/shien\/web\.box, packaged .* \(--repackage packages the VM again\)$/))
    expect(again.notes).toContain('reusing the delta made for this box by a push that did not finish')
    expect(again.events.some((e) => e.type === 'progress' && e.stage === 'delta')).toBe(false)
    expect(again.result.box.reused).toBe(true)
    expect(again.result.delta).toMatchObject({used: true})
    expect(existsSync(join(project, '.vagrant', 'shien'))).toBe(false)
  })

  it('packages again with --repackage, and makes the delta again when the kept box changed', async () => {
    const blade = new FakeBlade()
    blade.base = available
    blade.failOn = 'apply-delta'
    await pushWith(blade, planFor())
    const keep = join(project, '.vagrant', 'shien')
    const built = readFileSync(join(keep, 'web.delta.json'), 'utf8')

    // The box changed under the kept delta (same bytes, a newer time): the delta is made again.
    utimesSync(join(keep, 'web.box'), new Date(), new Date(Date.now() + 5000))
    const changed = await pushWith(blade, planFor())
    expect(changed.notes).not.toContain('reusing the delta made for this box by a push that did not finish')
    expect(changed.events.some((e) => e.type === 'progress' && e.stage === 'delta')).toBe(true)
    expect(readFileSync(join(keep, 'web.delta.json'), 'utf8')).not.toBe(built)
    expect(vagrantRuns()).toBe(1)

    const repackaged = await pushWith(blade, planFor({repackage: true}))
    expect(vagrantRuns()).toBe(2)
    expect(repackaged.notes.some((n) => n.startsWith('reusing'))).toBe(false)
  })

  it('makes the delta of a named box file in a temporary folder, and keeps nothing in the project', async () => {
    const blade = new FakeBlade()
    blade.base = available
    const boxPath = join(project, 'student.box')
    writeFileSync(boxPath, studentBox)
    const {result} = await pushWith(blade, planFor({boxPath}))
    if ('error' in result) throw result.error
    expect(result.delta).toMatchObject({used: true})
    expect(readdirSync(project)).toEqual(['student.box'])
    expect(vagrantRuns()).toBe(0)
  })
})

describe('a delta push and the architecture and firmware of the box', () => {
  const efiBox = async () => {
    const path = join(project, 'efi.box')
    await makeBox(project, 'efi.box', {ovf: makeOvf([{name: 'box-disk001.vmdk', capacityBytes: student.length}], {efi: true}), disks: [{name: 'box-disk001.vmdk', bytes: vmdkOfRaw(student), capacityBytes: student.length}]})
    return path
  }

  it('tells a blade that names its base\'s architecture the box\'s declared platform, for the overlay\'s record', async () => {
    const blade = new FakeBlade()
    blade.base = {...available, architecture: 'amd64', firmware: 'bios'}
    const {result} = await pushWith(blade, planFor({boxPath: await efiBox()}))
    if ('error' in result) throw result.error
    expect(blade.flags.get('base')).toEqual({box: 'os101/debian12', version: '2026.1.0'})
    expect(blade.flags.get('apply-delta')).toMatchObject({architecture: 'amd64', 'architecture-source': expect.stringContaining('box.ovf'), firmware: 'efi'})
  })

  it('sends a UEFI box whole to a blade too old to record a delta push\'s firmware', async () => {
    const blade = new FakeBlade()
    blade.base = available
    const {result, notes} = await pushWith(blade, planFor({boxPath: await efiBox()}))
    if ('error' in result) throw result.error
    expect(notes).toContain('sending the whole box: the blade is too old to record a delta push\'s UEFI firmware')
    expect(blade.calls).toContain('blade convert')
  })

  it('asks for an arm64 box\'s base by its architecture, and takes no base of another', async () => {
    const ovf = readFileSync(join(import.meta.dirname, '../../fixtures/vbox71/box-arm64.ovf'), 'utf8')
    const boxPath = await makeBox(project, 'arm64.box', {ovf, metadata: {provider: 'virtualbox', architecture: 'arm64'}})
    const blade = new FakeBlade()
    blade.base = {...available, architecture: 'amd64'}
    const {result, notes} = await pushWith(blade, planFor({boxPath}))
    if ('error' in result) throw result.error
    expect(blade.flags.get('base')).toEqual({box: 'os101/debian12', version: '2026.1.0', architecture: 'arm64'})
    expect(notes).toContain('sending the whole box: the blade answered with the amd64 base of os101/debian12 2026.1.0 when asked for the arm64 one')
    expect(blade.calls).toContain('blade convert')

    // The arm64 base: the delta is applied on it, with the box's declaration.
    const sized = ovf.replace('ovf:capacity="1048576"', `ovf:capacity="${student.length}"`)
    const armStudent = await makeBox(project, 'arm64-student.box', {ovf: sized, metadata: {provider: 'virtualbox', architecture: 'arm64'}, disks: [{name: 'box-disk001.vmdk', bytes: vmdkOfRaw(student), capacityBytes: student.length}]})
    const armBlade = new FakeBlade()
    armBlade.base = {...available, architecture: 'arm64', firmware: 'efi'}
    const delta = await pushWith(armBlade, planFor({boxPath: armStudent}))
    if ('error' in delta.result) throw delta.result.error
    expect(armBlade.calls).toContain('blade apply-delta')
    expect(armBlade.flags.get('apply-delta')).toMatchObject({architecture: 'arm64', 'architecture-source': 'metadata.json ("architecture": "arm64")', firmware: 'efi'})
  })
})
