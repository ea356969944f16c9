import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {hostname} from 'node:os'
import type {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import type {SFTPWrapper} from 'ssh2'

import {BladeClient} from '../client/blade-client.js'
import {ShienError} from '../errors.js'
import {need} from '../pipeline/outputs.js'
import {connect, type Connection} from '../transport/connect.js'
import {sftpCall} from '../transport/sftp-call.js'
import {type UploadResult, uploadResumable} from '../transport/sftp-upload.js'
import type {PushContext, PushStage, SlotState, VirshList} from './context.js'
import {chooseUpload} from './delta-upload.js'
import {checkBladeArch} from './arch-check.js'
import {checkRoomBeforePackage} from './room-check.js'
import {formatBytes} from '../box/format-info.js'
import type {StageIO} from '../pipeline/runner.js'
import type {HelloResult} from '../protocol/blade-steps.js'
import {placeOnCluster} from './connect-placement.js'

/**
 * The checks that can fail fast, before anything is packaged or sent: connects to the blade
 * (host key, login), checks that both sides speak the same protocol, places the VM on a blade
 * of the cluster when the blade describes one of several (connect-placement.ts: the push then
 * goes to the chosen blade, over a connection of its own), takes the slot's push lock
 * (SLOT_BUSY while another push has it, held until the last cleanup has run) and checks the slot
 * (BAD_SLOT, SLOT_DEFINED without --replace) and the blade's room for the VM's disks when they are
 * about to be packaged (BLADE_DISK_FULL). It runs before `vagrant package`, which shuts the
 * VM down for minutes: a push that would be refused is refused before that.
 */
export const connectStage: PushStage = {
  id: 'connect',
  async run(ctx, io) {
    let {blade, hello} = await open(ctx, io)
    const placed = await placeOnCluster(ctx, io, blade, hello)
    if (placed !== undefined && placed.plan !== ctx.plan) {
      // The chosen blade is another: its own connection replaces the first's.
      const first = need(ctx.out, 'connect').connection
      ctx.plan = placed.plan
      try {
        ;({blade, hello} = await open(ctx, io))
      } finally {
        first.close()
      }
    }
    const {plan} = ctx
    const out = need(ctx.out, 'connect')
    if (placed !== undefined) out.placement = placed.placement
    out.bladeArch = hello.arch
    out.slotLock = await blade.lockSlot(plan.slot, hostname(), io.signal)
    const state = await slotState(blade, plan.slot, io.signal)
    checkSlot(ctx, state)
    out.slotState = state
    const disks = checkRoomBeforePackage(plan, hello.space)
    if (disks?.known && hello.space) {
      io.emit({type: 'note', stage: 'connect', message: `the blade has room for the VM's disks: ${formatBytes(disks.bytes)}, with ${formatBytes(hello.space.freeBytes)} free`})
    }
  },
  async cleanup(ctx) {
    // The cleanups of the later stages (a rollback, the tidy) ran first, under the lock.
    await ctx.out.connect?.slotLock?.release()
    ctx.out.connect?.connection.close()
  },
}

/** Connects to the plan's blade (host key, login) and checks that both sides speak the same protocol. */
async function open(ctx: PushContext, io: StageIO): Promise<{blade: BladeClient; hello: HelloResult}> {
  const {plan} = ctx
  const connection = await connect({
    target: plan.target,
    confirmNewHostKey: ctx.confirmHostKey,
    agentSocket: ctx.agentSocket,
    askPassphrase: ctx.askPassphrase,
    signal: io.signal,
  })
  const blade = new BladeClient(connection, plan.bladeCommand)
  const publicKey = plan.publicKeyFile ? (await readFile(plan.publicKeyFile, 'utf8')).trim().split('\n')[0] : connection.publicKey
  // Set as soon as it is open, so the stage's cleanup closes it whatever comes next.
  ctx.out.connect = {connection, blade, publicKey}
  return {blade, hello: await blade.hello(io.signal)}
}

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

/**
 * Checks the box's architecture against what the blade runs, then streams into incoming/
 * (resumable) either a delta against the course base the blade has, or the whole box.
 */
export const uploadStage: PushStage = {
  id: 'upload',
  async run(ctx, io) {
    const {plan} = ctx
    const {connection, blade, slotState: state, bladeArch} = need(ctx.out, 'connect')
    if (state === undefined) throw new Error('Internal error: the upload ran before the slot was checked.')
    const verdict = checkBladeArch(need(ctx.out, 'package').box.architecture, bladeArch, plan.target.alias)
    need(ctx.out, 'connect').arch = verdict
    if (verdict.mode === 'emulated') io.emit({type: 'note', stage: 'upload', message: verdict.note})
    const choice = await chooseUpload(ctx, io)
    const {size} = choice
    // A whole box goes without `kind`, as it always did.
    const kind = choice.kind === 'delta' ? 'delta' : undefined
    const open = () => (choice.kind === 'delta' ? createReadStream(choice.path) : choice.payload.open())
    const prepared = await blade.call('prepare', {name: plan.name, size, kind, slot: plan.slot}, {signal: io.signal})
    if (prepared.removedOld.length > 0) {
      io.emit({type: 'note', stage: 'upload', message: `removed from incoming/ on the blade, older than the blade keeps uploads: ${prepared.removedOld.join(', ')}`})
    }
    // A push that failed after its upload left the whole upload in place: when it is this one,
    // byte for byte, nothing is sent again.
    const kept = prepared.boxSize === size ? await keptUpload(blade, {name: plan.name, size, kind}, open, io.signal) : undefined
    let sent
    if (kept) {
      sent = kept
      io.emit({type: 'note', stage: 'upload', message: `the blade has this ${kind ?? 'box'} from the last try: nothing to send`})
    } else {
      const channels = await openChannels(connection, ctx.channels)
      try {
        sent = await uploadResumable({
          channels,
          partPath: prepared.partPath,
          source: {size, open},
          remoteHashes: (prefix, blockSize) => blade.call('hash', {name: plan.name, prefix, 'block-size': blockSize, kind}, {signal: io.signal}),
          onProgress: (bytes, total) => io.emit({type: 'progress', stage: 'upload', bytes, total}),
          signal: io.signal,
        })
      } finally {
        for (const channel of channels) channel.end()
      }
      if (sent.resumedFrom > 0) {
        io.emit({type: 'note', stage: 'upload', message: `resumed at ${sent.resumedFrom} bytes, sent ${sent.bytesSent}`})
      }
      await blade.call('commit', {name: plan.name, size, kind}, {signal: io.signal})
    }
    ctx.out.upload = {
      slotState: state,
      sent,
      ...(choice.kind === 'delta' ? {delta: choice.delta} : {}),
      ...(choice.kind === 'box' && choice.wholeBox ? {wholeBox: choice.wholeBox} : {}),
    }
  },
}

/**
 * The upload already in place on the blade, when its sha256 equals the source's (both read in
 * full, at once): what the upload would have reported, with nothing sent.
 */
async function keptUpload(
  blade: BladeClient,
  upload: {name: string; size: number; kind?: 'delta'},
  open: () => Readable,
  signal: AbortSignal,
): Promise<UploadResult | undefined> {
  const [remote, local] = await Promise.all([
    blade.call('hash', {name: upload.name, prefix: upload.size, 'block-size': 1, kind: upload.kind, complete: true}, {signal}),
    sha256Of(open(), signal),
  ])
  return remote.prefix === local ? {sha256: local, size: upload.size, resumedFrom: upload.size, bytesSent: 0} : undefined
}

async function sha256Of(stream: Readable, signal: AbortSignal): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(stream, hash, {signal})
  return hash.digest('hex')
}

async function openChannels(connection: Connection, count: number): Promise<SFTPWrapper[]> {
  const {client} = connection
  const channels: SFTPWrapper[] = []
  for (let i = 0; i < count; i++) channels.push(await sftpCall<SFTPWrapper>((cb) => client.sftp(cb)))
  return channels
}
