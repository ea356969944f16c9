import {lstat} from 'node:fs/promises'
import type {Readable} from 'node:stream'

import {admittedStep} from '../blade/admission.js'
import {checkSlotName} from '../blade/convert.js'
import type {BladeContext} from '../blade/caller.js'
import {emitBladeEvent} from '../protocol/blade-events.js'
import {badInput, ShienError} from '../errors.js'
import type {PipelineEvent} from '../pipeline/events.js'
import {ARCHIVE_NAME} from './plan.js'
import type {CloudPushResult} from '../protocol/blade-steps.js'
import {pushImage} from './push-image.js'
import type {BladeCloudRequest} from './remote-push.js'
import {notingClient} from './sakura-client.js'
import {Secret} from './secret.js'
import {checkSettings, ZONE_PATTERN} from './settings.js'

export interface BladeCloudFlags {
  slot: string
  zone: string
  name: string
  description?: string
  keepOnFailure: boolean
}

/**
 * The blade side of `shien cloud push SLOT`, run as the student: the API key and settings come
 * on stdin (one JSON line); the end of stdin means the laptop gave up (Ctrl-C, lost link), and
 * the push is cancelled, which deletes its archive.
 */
export async function pushSlotImage(ctx: BladeContext, flags: BladeCloudFlags, io: {input: Readable; abort: AbortController}): Promise<CloudPushResult> {
  // If the laptop vanishes, sshd may close our stdout and stderr: a progress line failing with
  // EPIPE must not end the process before it has deleted the archive.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined)
  try {
    checkSlotName(flags.slot)
    if (!ZONE_PATTERN.test(flags.zone)) throw badInput('BAD_ZONE', `"${flags.zone}" is not a Sakura Cloud zone.`)
    if (!ARCHIVE_NAME.test(flags.name)) throw badInput('BAD_NAME', `"${flags.name}" cannot name an archive.`)
    const request = await readRequest(io.input)
    io.input.once('end', () => io.abort.abort(new Error('the laptop ended the push')))
    const imagePath = ctx.paths.image(flags.slot)
    await checkSlotImage(imagePath, flags.slot)
    const settings = checkSettings(request.settings)
    const credentials = {token: request.token, secret: new Secret(request.secret), origin: 'the laptop'}
    const api = notingClient({zone: flags.zone, credentials, settings}, (message) => emitBladeEvent({type: 'note', message}))
    const job = {
      imagePath,
      workDir: ctx.paths.incoming,
      archive: {name: flags.name, description: flags.description ?? `Pushed by shien from slot ${flags.slot}`, tags: ['shien']},
      keepOnFailure: flags.keepOnFailure,
      settings,
    }
    const signal = io.abort.signal
    // The conversion is a heavy step like a push's: it waits for its place in the blade's queue.
    const admit = <T>(work: () => Promise<T>) => admittedStep(ctx, 'convert', flags.slot, signal, work)
    return await pushImage(job, {api, signal, emit: toBlade, admit})
  } finally {
    // Stdin stays open for the EOF watch; let go of it so the process can end.
    io.input.destroy()
  }
}

function toBlade(event: PipelineEvent): void {
  if (event.type === 'note') emitBladeEvent({type: 'note', message: event.message})
  if (event.type === 'progress') emitBladeEvent({type: 'progress', step: event.stage, done: event.bytes, total: event.total ?? 0})
}

async function checkSlotImage(path: string, slot: string): Promise<void> {
  const stats = await lstat(path).catch(() => undefined)
  if (!stats) throw badInput('CLOUD_NO_IMAGE', `Slot ${slot} has no image (${path}).`, ['Push a box into it first: shien push --slot ' + slot])
  // The student's own regular file only: a link could stand for anything the student can read.
  if (!stats.isFile() || stats.uid !== process.getuid?.()) {
    throw badInput('CLOUD_BAD_IMAGE', `${path} is not a regular file of yours.`)
  }
}

/** The first line of stdin: the request the laptop sent. */
function readRequest(input: Readable, timeoutMs = 30_000): Promise<UncheckedRequest> {
  return new Promise((resolve, reject) => {
    let text = ''
    const done = (outcome: {error: Error} | {request: UncheckedRequest}) => {
      clearTimeout(timer)
      input.off('data', onData)
      input.off('end', onEnd)
      // Keep reading (and dropping) so the end of stdin is still seen.
      input.on('data', () => undefined)
      if ('error' in outcome) reject(outcome.error)
      else resolve(outcome.request)
    }
    const onEnd = () => done({error: noRequest('stdin ended before the request')})
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8')
      const newline = text.indexOf('\n')
      if (newline < 0) return text.length > 1 << 20 ? done({error: noRequest('the request is too long')}) : undefined
      try {
        done({request: parseRequest(text.slice(0, newline))})
      } catch (error) {
        done({error: error as Error})
      }
    }
    const timer = setTimeout(() => done({error: noRequest(`no request on stdin in ${timeoutMs / 1000} s`)}), timeoutMs)
    input.on('data', onData)
    input.once('end', onEnd)
  })
}

/** The request as it came: its settings are checked with the blade's own rules before use. */
type UncheckedRequest = Omit<BladeCloudRequest, 'settings'> & {settings: unknown}

function parseRequest(line: string): UncheckedRequest {
  let value: Partial<BladeCloudRequest>
  try {
    value = JSON.parse(line) as Partial<BladeCloudRequest>
  } catch {
    throw noRequest('the request is not JSON')
  }
  if (typeof value.token !== 'string' || typeof value.secret !== 'string' || !value.token || !value.secret) {
    throw noRequest('the request has no API key')
  }
  return {token: value.token, secret: value.secret, settings: value.settings}
}

const noRequest = (why: string) =>
  new ShienError(`shien blade cloud-push reads its API key from stdin, as shien cloud push sends it: ${why}.`, {code: 'CLOUD_NO_REQUEST', exit: 'usage'})
