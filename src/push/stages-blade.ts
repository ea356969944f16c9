import type {PushContext, VirshList} from './context.js'
import type {Stage} from './runner.js'


/** Gate and convert on the blade, as the student; the slot's current image is not touched. */
export const convertStage: Stage<PushContext> = {
  id: 'convert',
  async run(ctx, io) {
    ctx.converted = await ctx.blade!.call('convert', {name: ctx.plan.name, slot: ctx.plan.slot, sha256: ctx.upload?.sha256}, {
      signal: io.signal,
      onEvent: (event) => {
        if (event.type === 'progress') io.emit({type: 'progress', stage: 'convert', bytes: event.done, total: event.total})
        else io.emit({type: 'note', stage: 'convert', message: event.message})
      },
    })
  },
  async cleanup(ctx, outcome) {
    if (outcome !== 'ok' && !ctx.installed) await ctx.blade?.call('install', {slot: ctx.plan.slot, action: 'rollback'})
  },
}

export const hardenStage: Stage<PushContext> = {
  id: 'harden',
  async run(ctx, io) {
    ctx.hardened = await ctx.blade!.call('harden', {
      slot: ctx.plan.slot,
      'public-key': ctx.publicKey!,
      box: ctx.plan.name,
      sha256: ctx.upload?.sha256,
    }, {signal: io.signal})
  },
}

/**
 * Installs the hardened image in its slot and defines the VM through ie-virsh. With --replace
 * the old VM is stopped and undefined first, and its image comes back if anything later fails.
 */
export const defineStage: Stage<PushContext> = {
  id: 'define',
  async run(ctx, io) {
    const blade = ctx.blade!
    const {slot} = ctx.plan
    if (ctx.slotState?.running) await blade.virsh(['destroy', slot], {signal: io.signal})
    if (ctx.slotState?.defined) await blade.virsh(['undefine', slot], {signal: io.signal})
    await blade.call('install', {slot, action: 'install'}, {signal: io.signal})
    ctx.installed = true
    await blade.virsh(['define', slot], {signal: io.signal})
    ctx.defined = true
  },
  async cleanup(ctx, outcome) {
    if (outcome === 'ok') return
    const blade = ctx.blade!
    const {slot} = ctx.plan
    if (ctx.defined) await blade.virsh(['destroy', slot]).catch(() => undefined)
    if (ctx.defined) await blade.virsh(['undefine', slot]).catch(() => undefined)
    const {restored} = await blade.call('install', {slot, action: 'rollback', installed: ctx.installed})
    // The previous VM comes back as it was: defined again on its old image, and running if it ran.
    if (!restored || !ctx.slotState?.defined) return
    await blade.virsh(['define', slot]).catch(() => undefined)
    if (ctx.slotState.running) await blade.virsh(['start', slot]).catch(() => undefined)
  },
}

export const startStage: Stage<PushContext> = {
  id: 'start',
  async run(ctx, io) {
    const blade = ctx.blade!
    await blade.virsh(['start', ctx.plan.slot], {signal: io.signal})
    const list = await blade.virsh<VirshList>(['list'], {signal: io.signal})
    const domain = list.domains?.find((d) => d.slot === ctx.plan.slot)
    ctx.vm = {domain: domain?.name ?? `${ctx.plan.target.user}-${ctx.plan.slot}`, sshPort: domain?.sshPort, state: domain?.state}
  },
  async cleanup(ctx, outcome) {
    if (outcome === 'ok') await ctx.blade?.call('install', {slot: ctx.plan.slot, action: 'tidy', name: ctx.plan.name})
  },
}
