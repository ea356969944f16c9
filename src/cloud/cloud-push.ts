import type {Emit} from '../pipeline/events.js'
import type {NewHostKey} from '../transport/connect.js'
import type {CloudPushPlan} from './plan.js'
import type {CloudPushResult} from '../protocol/blade-steps.js'
import {pushImage} from './push-image.js'
import {pushSlotFromBlade} from './remote-push.js'
import {notingClient} from './sakura-client.js'
import type {AskPassphrase} from '../transport/ssh-auth.js'

export type CloudPushReport = CloudPushResult & {source: {kind: 'file'; path: string} | {kind: 'slot'; slot: string; host: string}}

export interface CloudPushDeps {
  signal: AbortSignal
  emit: Emit
  confirmHostKey: (key: NewHostKey) => Promise<boolean>
  agentSocket?: string
  /** Asks a key file's passphrase on a terminal. */
  askPassphrase?: AskPassphrase
}

/** Runs a planned cloud push: here for a file, on the blade for a slot. */
export async function cloudPush(plan: CloudPushPlan, deps: CloudPushDeps): Promise<CloudPushReport> {
  const {source} = plan
  if (source.kind === 'slot') {
    const result = await pushSlotFromBlade(plan, source, deps)
    return {...result, source: {kind: 'slot', slot: source.slot, host: source.target.alias}}
  }
  const api = notingClient({zone: plan.zone, credentials: plan.credentials, settings: plan.settings}, (message) =>
    deps.emit({type: 'note', stage: 'upload', message}),
  )
  const job = {imagePath: source.path, workDir: source.workDir, archive: plan.archive, keepOnFailure: plan.keepOnFailure, settings: plan.settings}
  const result = await pushImage(job, {api, signal: deps.signal, emit: deps.emit})
  return {...result, source: {kind: 'file', path: source.path}}
}
