import {isShienError, ShienError} from '../errors.js'
import type {BladeEvent} from '../protocol/blade-events.js'
import {BladeClient} from '../client/blade-client.js'
import type {Emit} from '../pipeline/events.js'
import {need} from '../pipeline/outputs.js'
import {runStages, type Stage} from '../pipeline/runner.js'
import {connect, type Connection, type NewHostKey} from '../transport/connect.js'
import type {CloudPushPlan, CloudSource} from './plan.js'
import type {CloudPushResult} from '../protocol/blade-steps.js'
import type {AskPassphrase} from '../transport/ssh-auth.js'

/** What the laptop sends on the blade step's stdin: the secrets and settings, never argv. */
export interface BladeCloudRequest {
  token: string
  secret: string
  settings: CloudPushPlan['settings']
}

export interface RemoteDeps {
  signal: AbortSignal
  emit: Emit
  confirmHostKey: (key: NewHostKey) => Promise<boolean>
  agentSocket?: string
  /** Asks a key file's passphrase on a terminal. */
  askPassphrase?: AskPassphrase
}

interface RemoteContext {
  plan: CloudPushPlan
  source: Extract<CloudSource, {kind: 'slot'}>
  deps: RemoteDeps
  out: Partial<{connect: {connection: Connection; blade: BladeClient}; push: CloudPushResult}>
  /** The blade step was called: from then on, only the blade knows what became of the archive. */
  started?: boolean
}

/** Long enough for the blade to delete the archive after Ctrl-C (its own cleanup deadline is 120 s). */
const ABORT_GRACE_MS = 150_000

const connectStage: Stage<RemoteContext> = {
  id: 'connect',
  detail: (ctx) => `to ${ctx.source.target.alias}`,
  async run(ctx, io) {
    const {source, deps} = ctx
    const connection = await connect({
      target: source.target,
      confirmNewHostKey: deps.confirmHostKey,
      agentSocket: deps.agentSocket,
      askPassphrase: deps.askPassphrase,
      signal: io.signal,
    })
    const blade = new BladeClient(connection, source.bladeCommand)
    ctx.out.connect = {connection, blade}
    await blade.hello(io.signal)
  },
  async cleanup(ctx) {
    ctx.out.connect?.connection.close()
  },
}

/** `shien blade cloud-push` with the API key on its stdin; its progress comes back as events. */
const bladeStage: Stage<RemoteContext> = {
  id: 'push',
  detail: (ctx) => `slot ${ctx.source.slot} from ${ctx.source.target.alias}`,
  async run(ctx, io) {
    const {plan, source} = ctx
    const {blade} = need(ctx.out, 'connect')
    const request: BladeCloudRequest = {token: plan.credentials.token, secret: plan.credentials.secret.reveal(), settings: plan.settings}
    const flags = {
      slot: source.slot,
      zone: plan.zone,
      name: plan.archive.name,
      description: plan.archive.description,
      'keep-on-failure': plan.keepOnFailure,
    }
    ctx.started = true
    ctx.out.push = await blade.call('cloud-push', flags, {
      signal: io.signal,
      stdin: JSON.stringify(request) + '\n',
      abortGraceMs: ABORT_GRACE_MS,
      onEvent: (event) => forward(event, io.emit),
    })
  },
}

/**
 * Pushes a slot's image from the blade, where the image is and the uplink is fast: over the
 * same SSH connection as `shien push`, `shien blade cloud-push` runs as the student with the
 * API key on its stdin. Ctrl-C ends that stdin; the blade then deletes the archive and says so.
 */
export async function pushSlotFromBlade(
  plan: CloudPushPlan,
  source: Extract<CloudSource, {kind: 'slot'}>,
  deps: RemoteDeps,
): Promise<CloudPushResult> {
  const ctx: RemoteContext = {plan, source, deps, out: {}}
  try {
    await runStages([connectStage, bladeStage], ctx, {signal: deps.signal, onEvent: deps.emit})
    return need(ctx.out, 'push')
  } catch (error) {
    // Interrupted while connecting: nothing reached the blade, and the error says so already.
    if (deps.signal.aborted && ctx.out.connect) throw cancelled(error, ctx.started ?? false)
    throw error
  }
}

/** Blade progress (`@shien {...}` lines) as the renderer's events. */
function forward(event: BladeEvent, emit: Emit): void {
  if (event.type === 'note') emit({type: 'note', stage: 'upload', message: event.message})
  // The blade's conversion waits for its place in the push queue, as a push's convert does.
  else if (event.type === 'waiting' || event.type === 'admitted') emit({...event, stage: 'push'})
  else if (event.type !== 'progress') return
  else if (event.step === 'convert') emit({type: 'progress', stage: 'convert', bytes: event.done, total: event.total, unit: event.unit ?? 'percent'})
  else emit({type: 'progress', stage: 'upload', bytes: event.done, total: event.total})
}

function cancelled(error: unknown, started: boolean): ShienError {
  if (!started) {
    return new ShienError('Interrupted before the blade started the push; nothing was created in Sakura Cloud.', {code: 'CLOUD_CANCELLED', exit: 'cancelled', cause: error})
  }
  // The blade's own report (which archive it deleted) is the message to keep.
  const reported = isShienError(error) && error.code === 'CLOUD_CANCELLED'
  const message = reported ? (error as ShienError).message.replace(/ \(on the blade, [^)]*\)$/, '') : 'Interrupted; the blade did not confirm what became of the archive.'
  return new ShienError(message, {
    code: 'CLOUD_CANCELLED',
    exit: 'cancelled',
    cause: error,
    suggestions: reported ? (error as ShienError).suggestions : ['Check the archives of the zone in the control panel and delete a half-sent one.'],
  })
}
