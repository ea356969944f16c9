import type {PipelineEvent} from '../pipeline/events.js'
import {runStages, type StageTiming} from '../pipeline/runner.js'
import type {NewHostKey} from '../transport/connect.js'
import {ShienError} from '../errors.js'
import type {PushContext, PushStage, StageId} from './context.js'
import type {PushPlan} from './plan.js'
import {convertStage, defineStage, hardenStage, startStage} from './stages-blade.js'
import {packageStage} from './stages-local.js'
import {connectStage, uploadStage} from './stages-upload.js'
import type {AskPassphrase} from '../transport/ssh-auth.js'
import {recordPushedHostKeys, type PushedHostKeys} from '../client/vm/vm-host-keys.js'
import {loginCommand, vmLogin} from '../client/vm/vm-login.js'
import type {PushPlacement} from './push-placement.js'

/** The fast checks (connect) come first: `vagrant package` shuts the VM down, so nothing that could refuse the push waits behind it. */
export const pushStages: PushStage[] = [connectStage, packageStage, uploadStage, convertStage, hardenStage, defineStage, startStage]

/** What `shien push` reports (and prints as its --json object). */
export interface PushResult {
  vm: string
  slot: string
  host: string
  state?: string
  /** How to log in with OpenSSH, when the blade forwards a port to the VM's sshd: through the blade, under the VM's host key alias. */
  ssh?: string
  /** The same with shien: `shien vm ssh SLOT`. */
  login?: string
  /** The VM's host keys (made by harden), recorded in known_hosts under its alias; or why not. */
  hostKeys?: PushedHostKeys
  /** `sha256`, `size`, `sent`: of what was uploaded (the delta, after a delta push). `reused`: a box kept from a push that did not finish. */
  box: {name: string; sha256?: string; size?: number; sent: number; resumedFrom: number; privateKeysLeftOut: string[]; reused: boolean}
  /** Whether a delta against a course base box went instead of the whole box; if not, why, when a base was looked for. */
  delta: {used: true; base: string; version: string; bytes: number; changedBlocks: number; zeroedBlocks: number; virtualSize: number} | {used: false; reason?: string}
  image?: {record?: string; virtualSize?: number}
  /** Which blade of the cluster the VM went to, how that was decided, and why every other blade was passed over; absent without a cluster. */
  placement?: PushPlacement
  /** How the blade runs the VM's architecture, when the box declares one: natively (KVM) or emulated (TCG, several times slower). */
  arch?: {name: string; mode: 'native' | 'emulated'}
  timings: Array<StageTiming<StageId>>
  /** How long the convert (or apply-delta) and harden steps waited for their turn on the blade (push.concurrent). */
  waitedMs: Partial<Record<'convert' | 'harden', number>>
}

export interface PushDeps {
  signal: AbortSignal
  onEvent?: (event: PipelineEvent) => void
  confirmHostKey: (key: NewHostKey) => Promise<boolean>
  agentSocket?: string
  /** Asks a key file's passphrase on a terminal. */
  askPassphrase?: AskPassphrase
  channels?: number
  stages?: PushStage[]
}

/** Runs a push plan through every stage and reports where the VM runs. */
export async function push(plan: PushPlan, deps: PushDeps): Promise<PushResult> {
  const ctx: PushContext = {
    plan,
    confirmHostKey: deps.confirmHostKey,
    agentSocket: deps.agentSocket,
    askPassphrase: deps.askPassphrase,
    channels: deps.channels ?? 3,
    out: {},
    waitedMs: {},
    made: {},
  }
  const where: CancelledAt = {}
  const onEvent = (event: PipelineEvent) => {
    if (event.type === 'stage:start') Object.assign(where, {stage: event.stage, bytes: undefined, total: undefined})
    else if (event.type === 'progress' && event.stage === 'upload' && event.unit !== 'percent') Object.assign(where, {bytes: event.bytes, total: event.total})
    deps.onEvent?.(event)
  }
  let timings: Array<StageTiming<StageId>>
  try {
    timings = await runStages(deps.stages ?? pushStages, ctx, {signal: deps.signal, onEvent})
  } catch (error) {
    throw deps.signal.aborted ? cancelled(where, error) : error
  }
  // Only once every stage passed: a failed push leaves the slot's old VM, and its keys, as they were.
  // ctx.plan: the blade the push went to, when placement chose another than the one named.
  const account = ctx.out.start?.account ?? ctx.plan.target.user
  const hostKeys = await recordPushedHostKeys(ctx.plan.target, ctx.plan.naming, {account, slot: plan.slot}, ctx.out.harden?.hostKeys)
  return {...result(ctx, timings), ...loginOf(ctx, account), hostKeys}
}

/** Where a push was when it was interrupted: its stage, and for the upload, how far it got. */
interface CancelledAt {
  stage?: string
  bytes?: number
  total?: number
}

/** What Ctrl-C left, by stage, so the student knows what the re-run will not do again. */
const KEPT: Record<string, string> = {
  connect: 'nothing was packaged or sent',
  package: 'nothing was sent, and the VM is as vagrant package left it',
  convert: 'the whole upload stays on the blade and is not sent again; the slot\'s image and VM are as they were',
  harden: 'the whole upload stays on the blade and is not sent again; the slot\'s image and VM are as they were',
  define: 'the whole upload stays on the blade and is not sent again; the slot\'s image and VM are as they were',
  start: 'the whole upload stays on the blade and is not sent again; the slot\'s image and VM are as they were',
}

/**
 * Ctrl-C anywhere in a push: CANCELLED (exit 130), saying at which stage and what was kept for a
 * resume, whatever the stage failed with as it was stopped (a connection torn down with it, a
 * blade step's own cancellation).
 */
function cancelled(at: CancelledAt, cause: unknown): ShienError {
  let kept = at.stage ? KEPT[at.stage] : undefined
  if (at.stage === 'upload') {
    const mib = (at.bytes ?? 0) / 2 ** 20
    kept = at.total
      ? `the ${mib.toFixed(1)} MiB sent (${Math.floor(((at.bytes ?? 0) / at.total) * 100)}%) stay on the blade and are not sent again`
      : 'what was sent stays on the blade and is not sent again'
  }
  return new ShienError(`Interrupted${at.stage ? ` during ${at.stage}` : ''}${kept ? `: ${kept}` : ''}.`, {
    code: 'CANCELLED',
    exit: 'cancelled',
    cause,
    suggestions: ['Run the same command again: a push resumes where it stopped.'],
  })
}

/** How to log in to the pushed VM: with shien, and with OpenSSH under the VM's alias. */
function loginOf(ctx: PushContext, account: string): Pick<PushResult, 'ssh' | 'login'> {
  const {plan} = ctx
  const port = ctx.out.start?.sshPort
  const host = /@(\S+)$/.exec(ctx.out.start?.ssh ?? '')?.[1] ?? '127.0.0.1'
  if (port === undefined) return {}
  const login = vmLogin(plan.target, plan.naming, {account, slot: plan.slot, host, port})
  return {ssh: loginCommand(login, plan.naming.home), login: `shien vm ssh ${plan.slot}`}
}

function result(ctx: PushContext, timings: Array<StageTiming<StageId>>): PushResult {
  const {plan, out} = ctx
  const vm = out.start
  const sent = out.upload?.sent
  return {
    vm: vm?.domain ?? `${plan.target.user}-${plan.slot}`,
    slot: plan.slot,
    host: plan.target.alias,
    state: vm?.state,
    box: {
      name: plan.name,
      sha256: sent?.sha256,
      size: sent?.size,
      sent: sent?.bytesSent ?? 0,
      resumedFrom: sent?.resumedFrom ?? 0,
      privateKeysLeftOut: out.package?.box.privateKeys ?? [],
      reused: out.package?.reused ?? false,
    },
    delta: deltaOf(ctx),
    image: {record: out.harden?.record, virtualSize: out.convert?.virtualSize},
    ...(out.connect?.placement ? {placement: out.connect.placement} : {}),
    ...(out.connect?.arch?.arch ? {arch: {name: out.connect.arch.arch, mode: out.connect.arch.mode as 'native' | 'emulated'}} : {}),
    // The --json timings list the stages that do the work; connecting takes a moment and is
    // left out, so scripts reading them see the same stages as before (making a delta is part
    // of the upload stage).
    timings: timings.filter((t) => t.stage !== 'connect'),
    waitedMs: ctx.waitedMs,
  }
}

function deltaOf(ctx: PushContext): PushResult['delta'] {
  const upload = ctx.out.upload
  if (upload?.delta) {
    const {box, version, bytes, changedBlocks, zeroedBlocks, virtualSize} = upload.delta
    return {used: true, base: box, version, bytes, changedBlocks, zeroedBlocks, virtualSize}
  }
  return upload?.wholeBox ? {used: false, reason: upload.wholeBox} : {used: false}
}
