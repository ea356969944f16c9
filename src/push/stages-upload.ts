import type {SFTPWrapper} from 'ssh2'

import {boxPayload} from '../box/payload.js'
import {ShienError} from '../errors.js'
import {connect} from '../transport/connect.js'
import {sftpCall} from '../transport/sftp-call.js'
import {uploadResumable} from '../transport/sftp-upload.js'
import {BladeClient} from '../client/blade-client.js'
import type {PushContext, SlotState, VirshList} from './context.js'
import type {Stage} from './runner.js'


/** Asks ie-virsh what the slot holds, so a refused push is refused before the upload. */
async function slotState(blade: BladeClient, slot: string, signal: AbortSignal): Promise<SlotState> {
  const list = await blade.virsh<VirshList>(['list'], {signal})
  const limit = list.limits?.vms ?? 4
  const domain = list.domains?.find((d) => d.slot === slot)
  return {limit, defined: domain !== undefined, running: domain?.state === 'running'}
}

function checkSlot(ctx: PushContext, state: SlotState): void {
  const {slot, replace, target} = ctx.plan
  if (Number(slot) > state.limit) {
    const last = String(state.limit).padStart(2, '0')
    throw new ShienError(`Slot ${slot} is outside your slots 01 to ${last} on ${target.alias}.`, {
      code: 'BAD_SLOT',
      exit: 'badInput',
      suggestions: [`Use --slot 01 to --slot ${last}.`],
    })
  }
  if (state.defined && !replace) {
    throw new ShienError(`Slot ${slot} already holds a VM (${target.user}-${slot}).`, {
      code: 'SLOT_DEFINED',
      exit: 'refused',
      suggestions: [`Push with --replace to replace it (its image is kept until the new one runs),`, `or choose another slot with --slot.`],
    })
  }
}

/** Connects, checks versions and the slot, then streams the box into incoming/ (resumable). */
export const uploadStage: Stage<PushContext> = {
  id: 'upload',
  async run(ctx, io) {
    const {plan} = ctx
    ctx.connection = await connect({
      target: plan.target,
      knownHostsPath: plan.knownHostsPath,
      confirmNewHostKey: ctx.confirmHostKey,
      agentSocket: ctx.agentSocket,
      signal: io.signal,
    })
    const blade = (ctx.blade = new BladeClient(ctx.connection, plan.bladeCommand))
    ctx.publicKey ??= ctx.connection.publicKey
    await blade.hello(io.signal)
    ctx.slotState = await slotState(blade, plan.slot, io.signal)
    checkSlot(ctx, ctx.slotState)
    const payload = boxPayload(ctx.boxPath!, ctx.box!)
    ctx.payloadKind = payload.kind
    const size = await payload.size()
    const prepared = await blade.call('prepare', {name: plan.name, size}, {signal: io.signal})
    const channels = await openChannels(ctx, ctx.channels)
    try {
      ctx.upload = await uploadResumable({
        channels,
        partPath: prepared.partPath,
        source: {size, open: () => payload.open()},
        remoteHashes: (prefix, blockSize) => blade.call('hash', {name: plan.name, prefix, 'block-size': blockSize}, {signal: io.signal}),
        onProgress: (bytes, total) => io.emit({type: 'progress', stage: 'upload', bytes, total}),
        signal: io.signal,
      })
    } finally {
      for (const channel of channels) channel.end()
    }
    if (ctx.upload.resumedFrom > 0) {
      io.emit({type: 'note', stage: 'upload', message: `resumed at ${ctx.upload.resumedFrom} bytes, sent ${ctx.upload.bytesSent}`})
    }
    await blade.call('commit', {name: plan.name, size}, {signal: io.signal})
  },
}

async function openChannels(ctx: PushContext, count: number): Promise<SFTPWrapper[]> {
  const client = ctx.connection!.client
  const channels: SFTPWrapper[] = []
  for (let i = 0; i < count; i++) channels.push(await sftpCall<SFTPWrapper>((cb) => client.sftp(cb)))
  return channels
}
