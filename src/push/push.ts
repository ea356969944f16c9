import type {NewHostKey} from '../transport/connect.js'
import type {PushContext} from './context.js'
import type {PushPlan} from './plan.js'
import {type PipelineEvent, runStages, type Stage, type StageTiming} from './runner.js'
import {convertStage, defineStage, hardenStage, startStage} from './stages-blade.js'
import {packageStage} from './stages-local.js'
import {uploadStage} from './stages-upload.js'

export const pushStages: Stage<PushContext>[] = [packageStage, uploadStage, convertStage, hardenStage, defineStage, startStage]

/** What `shien push` reports (and prints as its --json object). */
export interface PushResult {
  vm: string
  slot: string
  host: string
  state?: string
  /** How to log in, when the blade forwards a port to the VM's sshd. */
  ssh?: string
  box: {name: string; sha256?: string; size?: number; sent: number; resumedFrom: number; privateKeysLeftOut: string[]}
  image?: {record?: string; virtualSize?: number}
  timings: StageTiming[]
}

export interface PushDeps {
  signal: AbortSignal
  onEvent?: (event: PipelineEvent) => void
  confirmHostKey: (key: NewHostKey) => Promise<boolean>
  agentSocket?: string
  channels?: number
  stages?: Stage<PushContext>[]
}

/** Runs a push plan through every stage and reports where the VM runs. */
export async function push(plan: PushPlan, deps: PushDeps): Promise<PushResult> {
  const ctx: PushContext = {
    plan,
    confirmHostKey: deps.confirmHostKey,
    agentSocket: deps.agentSocket,
    channels: deps.channels ?? 3,
  }
  try {
    const timings = await runStages(deps.stages ?? pushStages, ctx, {signal: deps.signal, onEvent: deps.onEvent})
    return result(ctx, timings)
  } finally {
    ctx.connection?.close()
  }
}

function result(ctx: PushContext, timings: StageTiming[]): PushResult {
  const {plan} = ctx
  const port = ctx.vm?.sshPort
  return {
    vm: ctx.vm?.domain ?? `${plan.target.user}-${plan.slot}`,
    slot: plan.slot,
    host: plan.target.alias,
    state: ctx.vm?.state,
    ssh: port ? `ssh -J ${plan.target.alias} -p ${port} vagrant@127.0.0.1` : undefined,
    box: {
      name: plan.name,
      sha256: ctx.upload?.sha256,
      size: ctx.upload?.size,
      sent: ctx.upload?.bytesSent ?? 0,
      resumedFrom: ctx.upload?.resumedFrom ?? 0,
      privateKeysLeftOut: ctx.box?.privateKeys ?? [],
    },
    image: {record: ctx.hardened?.record, virtualSize: ctx.converted?.virtualSize},
    timings,
  }
}
