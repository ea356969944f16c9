import {describe, expect, it} from 'vitest'

import type {BladeClient} from '../../../src/client/blade-client.js'
import type {PipelineEvent} from '../../../src/pipeline/events.js'
import type {BladeEvent} from '../../../src/protocol/blade-events.js'
import {runStages} from '../../../src/pipeline/runner.js'
import type {PushContext} from '../../../src/push/context.js'
import {convertStage, defineStage, hardenStage, startStage} from '../../../src/push/stages-blade.js'

/** The blade as the push stages see it: every call recorded, one of them made to fail. */
class FakeBlade {
  calls: string[] = []
  failOn?: string
  restored = true

  /** Convert answers with a harden the blade finished on the last try. */
  keptHarden = false

  /** What the heavy steps print on stderr before their work: their place in the blade's push queue. */
  queue: BladeEvent[] = []

  async call<T>(step: string, flags: Record<string, unknown>, opts: {onEvent?: (e: BladeEvent) => void} = {}): Promise<T> {
    const line = `blade ${step}${flags.action ? ` ${String(flags.action)}` : ''}`
    this.calls.push(line)
    if (step === 'convert' || step === 'harden') for (const e of this.queue) opts.onEvent?.(e)
    if (this.failOn === line) throw new Error(`${line} failed`)
    if (step === 'convert' && this.keptHarden) return {image: '/x/.01.new.qcow2', disk: '', virtualSize: 1, hardened: {record: '/x/.01.new.json', report: {kept: true}}} as T
    if (step === 'convert') return {image: '/x/.01.new.qcow2', disk: 'box-disk001.vmdk', virtualSize: 1} as T
    if (step === 'harden') return {record: '/x/.01.json', report: {}} as T
    if (step === 'install' && flags.action === 'rollback') return {restored: this.restored} as T
    return {} as T
  }

  async virsh<T>(args: string[]): Promise<T> {
    const line = `ie-virsh ${args.join(' ')}`
    this.calls.push(line)
    if (this.failOn === line) throw new Error(`${line} failed`)
    if (args[0] === 'list') return {domains: [{slot: '01', name: 'e195701-01', state: 'running', sshPort: 22000}]} as T
    return {} as T
  }
}

function contextFor(blade: FakeBlade, slotState: {defined: boolean; running: boolean}, start = true): PushContext {
  return {
    plan: {name: 'web', slot: '01', target: {user: 'e195701'}, start} as PushContext['plan'],
    confirmHostKey: async () => false,
    channels: 1,
    out: {
      connect: {blade: blade as unknown as BladeClient, publicKey: 'ssh-ed25519 AAAA student'} as NonNullable<PushContext['out']['connect']>,
      upload: {slotState: {limit: 4, ...slotState}, sent: {sha256: 'ab'}} as NonNullable<PushContext['out']['upload']>,
    },
    waitedMs: {},
    made: {},
  }
}

const STAGES = [convertStage, hardenStage, defineStage, startStage]
const run = (ctx: PushContext) => runStages(STAGES, ctx, {signal: new AbortController().signal})

describe('the blade stages of a push, over a fake blade', () => {
  it('converts, hardens, installs, defines and starts, then tidies up', async () => {
    const blade = new FakeBlade()
    const ctx = contextFor(blade, {defined: false, running: false})
    await run(ctx)
    expect(blade.calls).toEqual([
      'blade convert', 'blade harden', 'blade install install', 'ie-virsh define 01', 'ie-virsh start 01', 'ie-virsh list', 'blade install tidy',
    ])
    expect(ctx.out.start).toEqual({domain: 'e195701-01', account: 'e195701', sshPort: 22000, state: 'running'})
  })

  it('goes straight to define when the blade gives back a harden it finished for this upload and key on the last try', async () => {
    const blade = new FakeBlade()
    blade.keptHarden = true
    const ctx = contextFor(blade, {defined: false, running: false})
    const events: PipelineEvent[] = []
    await runStages(STAGES, ctx, {signal: new AbortController().signal, onEvent: (e) => events.push(e)})
    expect(blade.calls).toEqual(['blade convert', 'blade install install', 'ie-virsh define 01', 'ie-virsh start 01', 'ie-virsh list', 'blade install tidy'])
    expect(ctx.out.harden).toEqual({record: '/x/.01.new.json', report: {kept: true}})
    expect(events).toContainEqual({type: 'note', stage: 'convert', message: 'the blade finished converting and hardening this upload on the last try: using it'})
  })

  it('with --no-start, defines the VM and leaves it shut off', async () => {
    const blade = new FakeBlade()
    const ctx = contextFor(blade, {defined: false, running: false}, false)
    await run(ctx)
    expect(blade.calls).toEqual(['blade convert', 'blade harden', 'blade install install', 'ie-virsh define 01', 'ie-virsh list', 'blade install tidy'])
  })

  it('passes the blade\'s queue events on to the renderer and keeps how long each heavy step waited', async () => {
    const blade = new FakeBlade()
    blade.queue = [
      {type: 'waiting', ahead: 3, running: 2, bound: 2, elapsedMs: 0},
      {type: 'waiting', ahead: 0, running: 2, bound: 2, elapsedMs: 5000},
      {type: 'admitted', waitedMs: 6500},
      {type: 'progress', step: 'convert', done: 50, total: 100},
      {type: 'progress', step: 'convert', done: 512 * 2 ** 20, total: 2 ** 30, unit: 'bytes'},
    ]
    const ctx = contextFor(blade, {defined: false, running: false})
    const events: PipelineEvent[] = []
    await runStages([convertStage, hardenStage], ctx, {signal: new AbortController().signal, onEvent: (e) => events.push(e)})
    const convert = events.filter((e) => e.stage === 'convert' && e.type !== 'stage:start' && e.type !== 'stage:end')
    expect(convert).toEqual([
      {type: 'waiting', stage: 'convert', ahead: 3, running: 2, bound: 2, elapsedMs: 0},
      {type: 'waiting', stage: 'convert', ahead: 0, running: 2, bound: 2, elapsedMs: 5000},
      {type: 'admitted', stage: 'convert', waitedMs: 6500},
      {type: 'progress', stage: 'convert', bytes: 50, total: 100, unit: 'percent'},
      // The blade's convert says how far it is in bytes of the disk: the laptop shows MiB and a rate.
      {type: 'progress', stage: 'convert', bytes: 512 * 2 ** 20, total: 2 ** 30, unit: 'bytes'},
    ])
    expect(events.filter((e) => e.stage === 'harden' && e.type === 'admitted')).toHaveLength(1)
    expect(ctx.waitedMs).toEqual({convert: 6500, harden: 6500})
  })

  it('rolls the staged image back when hardening fails, and leaves the slot alone', async () => {
    const blade = new FakeBlade()
    blade.failOn = 'blade harden'
    await expect(run(contextFor(blade, {defined: true, running: true}))).rejects.toThrow('blade harden failed')
    expect(blade.calls).toEqual(['blade convert', 'blade harden', 'blade install rollback'])
  })

  it('with --replace, brings the old VM back, defined and running, when the new one cannot be defined', async () => {
    const blade = new FakeBlade()
    blade.failOn = 'ie-virsh define 01'
    await expect(run(contextFor(blade, {defined: true, running: true}))).rejects.toThrow('define 01 failed')
    expect(blade.calls).toEqual([
      'blade convert', 'blade harden',
      // The old VM makes room...
      'ie-virsh destroy 01', 'ie-virsh undefine 01', 'blade install install', 'ie-virsh define 01',
      // ...and comes back in reverse: the old image restored, defined again, started again.
      'blade install rollback', 'ie-virsh define 01', 'ie-virsh start 01',
    ])
  })

  it('undoes a VM that was defined but would not start, and leaves a slot that was empty empty', async () => {
    const blade = new FakeBlade()
    blade.failOn = 'ie-virsh start 01'
    await expect(run(contextFor(blade, {defined: false, running: false}))).rejects.toThrow('start 01 failed')
    expect(blade.calls).toEqual([
      'blade convert', 'blade harden', 'blade install install', 'ie-virsh define 01', 'ie-virsh start 01',
      'ie-virsh destroy 01', 'ie-virsh undefine 01', 'blade install rollback',
    ])
  })

  it('does not define the old VM again when there was no old image to restore', async () => {
    const blade = new FakeBlade()
    blade.failOn = 'ie-virsh define 01'
    blade.restored = false
    await expect(run(contextFor(blade, {defined: true, running: false}))).rejects.toThrow()
    expect(blade.calls.slice(-2)).toEqual(['ie-virsh define 01', 'blade install rollback'])
  })
})
