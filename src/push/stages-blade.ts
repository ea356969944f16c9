import type {StageIO} from '../pipeline/runner.js'
import {need} from '../pipeline/outputs.js'
import type {BladeEvent} from '../protocol/blade-events.js'
import type {DeltaPlatform, PushContext, PushStage, VirshList} from './context.js'

/**
 * A heavy step's `@shien` lines as the renderer's events: progress, notes, and its wait in the
 * blade's push queue, whose length is kept for the push's result.
 */
function bladeEvents(ctx: PushContext, stage: 'convert' | 'harden', io: StageIO) {
  return (event: BladeEvent) => {
    if (event.type === 'progress') io.emit({type: 'progress', stage, bytes: event.done, total: event.total, unit: event.unit ?? 'percent'})
    else if (event.type === 'note') io.emit({type: 'note', stage, message: event.message})
    else if (event.type === 'waiting') io.emit({...event, stage})
    else if (event.type === 'admitted') {
      ctx.waitedMs[stage] = (ctx.waitedMs[stage] ?? 0) + event.waitedMs
      io.emit({...event, stage})
    }
  }
}

/**
 * Gate and convert on the blade, as the student; the slot's current image is not touched.
 * After a delta upload the blade applies it on an overlay of the base instead (`apply-delta`).
 */
export const convertStage: PushStage = {
  id: 'convert',
  async run(ctx, io) {
    const {blade, publicKey} = need(ctx.out, 'connect')
    const {sent, delta} = need(ctx.out, 'upload')
    const {name, slot} = ctx.plan
    const opts = {signal: io.signal, onEvent: bladeEvents(ctx, 'convert', io)}
    // With the key, the blade gives back a harden it finished for this upload while the laptop was gone.
    const common = {name, slot, sha256: sent.sha256, 'public-key': publicKey}
    ctx.out.convert = delta
      ? await blade.call('apply-delta', {...common, box: delta.box, version: delta.version, ...platformFlags(delta.platform)}, opts)
      : await blade.call('convert', common, opts)
    if (ctx.out.convert.hardened) {
      io.emit({type: 'note', stage: 'convert', message: 'the blade finished converting and hardening this upload on the last try: using it'})
    }
  },
  async cleanup(ctx, outcome) {
    if (outcome !== 'ok' && !ctx.made.installed) await ctx.out.connect?.blade.call('install', {slot: ctx.plan.slot, action: 'rollback'})
  },
}

/** The box's platform as apply-delta's flags; none for a blade too old to take them. */
function platformFlags(platform: DeltaPlatform | undefined): {architecture?: string; 'architecture-source'?: string; firmware?: 'bios' | 'efi'} {
  if (!platform) return {}
  const {architecture, architectureSource, firmware} = platform
  return {
    ...(architecture ? {architecture} : {}),
    ...(architectureSource ? {'architecture-source': architectureSource} : {}),
    ...(firmware ? {firmware} : {}),
  }
}

export const hardenStage: PushStage = {
  id: 'harden',
  async run(ctx, io) {
    const {blade, publicKey} = need(ctx.out, 'connect')
    const kept = need(ctx.out, 'convert').hardened
    if (kept) {
      ctx.out.harden = kept
      return
    }
    ctx.out.harden = await blade.call('harden', {
      slot: ctx.plan.slot,
      'public-key': publicKey,
      box: ctx.plan.name,
      sha256: need(ctx.out, 'upload').sent.sha256,
    }, {signal: io.signal, onEvent: bladeEvents(ctx, 'harden', io)})
  },
}

/**
 * Installs the hardened image in its slot and defines the VM through ie-virsh. With --replace
 * the old VM is stopped and undefined first, and its image comes back if anything later fails.
 */
export const defineStage: PushStage = {
  id: 'define',
  async run(ctx, io) {
    const {blade} = need(ctx.out, 'connect')
    const {slotState} = need(ctx.out, 'upload')
    const {slot} = ctx.plan
    if (slotState.running) await blade.virsh(['destroy', slot], {signal: io.signal})
    if (slotState.defined) await blade.virsh(['undefine', slot], {signal: io.signal})
    await blade.call('install', {slot, action: 'install'}, {signal: io.signal})
    ctx.made.installed = true
    await blade.virsh(['define', slot], {signal: io.signal})
    ctx.made.defined = true
  },
  async cleanup(ctx, outcome) {
    const blade = ctx.out.connect?.blade
    if (outcome === 'ok' || !blade) return
    const {slot} = ctx.plan
    const {defined, installed} = ctx.made
    if (defined) await blade.virsh(['destroy', slot]).catch(() => undefined)
    if (defined) await blade.virsh(['undefine', slot]).catch(() => undefined)
    const {restored} = await blade.call('install', {slot, action: 'rollback', installed})
    // The previous VM comes back as it was: defined again on its old image, and running if it ran.
    const old = ctx.out.upload?.slotState
    if (!restored || !old?.defined) return
    await blade.virsh(['define', slot]).catch(() => undefined)
    if (old.running) await blade.virsh(['start', slot]).catch(() => undefined)
  },
}

export const startStage: PushStage = {
  id: 'start',
  async run(ctx, io) {
    const {blade} = need(ctx.out, 'connect')
    if (ctx.plan.start) await blade.virsh(['start', ctx.plan.slot], {signal: io.signal})
    const list = await blade.virsh<VirshList>(['list'], {signal: io.signal})
    const domain = list.domains?.find((d) => d.slot === ctx.plan.slot)
    const account = list.account ?? ctx.plan.target.user
    ctx.out.start = {domain: domain?.name ?? `${account}-${ctx.plan.slot}`, account, sshPort: domain?.sshPort, ssh: domain?.ssh, state: domain?.state}
  },
  async cleanup(ctx, outcome) {
    if (outcome === 'ok') await ctx.out.connect?.blade.call('install', {slot: ctx.plan.slot, action: 'tidy', name: ctx.plan.name})
  },
}
