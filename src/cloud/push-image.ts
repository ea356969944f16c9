import {rm, stat} from 'node:fs/promises'

import {isShienError, ShienError} from '../errors.js'
import type {CloudPushResult} from '../protocol/blade-steps.js'
import type {PipelineEvent} from '../pipeline/events.js'
import type {ArchiveApi, ArchiveInfo, FtpServerInfo} from './archive-api.js'
import {archiveSizeFor} from './archive-size.js'
import {cleanupAfterFailure} from './cleanup.js'
import {ftpsUpload, UploadError, type Uploader} from './ftps-upload.js'
import {convertToRaw, type ImageFormat, inspectImage} from './image.js'
import type {Clock} from './rate-limit.js'
import type {CloudSettings} from './settings.js'
import {waitAvailable} from './wait-available.js'

/** One image to turn into one archive. */
export interface CloudJob {
  imagePath: string
  /** Where a qcow2 becomes a (sparse) raw file for the upload; it is removed at the end. */
  workDir: string
  archive: {name: string; description: string; tags: string[]}
  keepOnFailure: boolean
  settings: CloudSettings
}

export interface CloudDeps {
  api: ArchiveApi
  upload?: Uploader
  signal: AbortSignal
  emit: (event: PipelineEvent) => void
  clock?: Clock
}

type Timings = CloudPushResult['timings']

async function timed<T>(timings: Timings, step: Timings[number]['step'], work: () => Promise<T>): Promise<T> {
  const t0 = performance.now()
  const value = await work()
  timings.push({step, ms: Math.round(performance.now() - t0)})
  return value
}

/**
 * The whole push: check the image (nothing larger than the largest archive reaches the API),
 * convert a qcow2 to raw, create the archive, send it over FTPS (again with a fresh password if
 * the transfer breaks), close FTP and wait until it is available. An archive that cannot be
 * completed is deleted (unless keepOnFailure), and the error says what became of it.
 */
export async function pushImage(job: CloudJob, deps: CloudDeps): Promise<CloudPushResult> {
  try {
    return await pushSteps(job, deps)
  } catch (error) {
    // Once the archive exists, cleanupAfterFailure has said what became of it; before, nothing was made.
    if (!deps.signal.aborted || (isShienError(error) && error.code === 'CLOUD_CANCELLED')) throw error
    throw new ShienError('Interrupted before an archive was created; nothing was left in Sakura Cloud.', {
      code: 'CLOUD_CANCELLED',
      exit: 'cancelled',
      cause: error,
    })
  }
}

async function pushSteps(job: CloudJob, deps: CloudDeps): Promise<CloudPushResult> {
  const timings: Timings = []
  const image = await inspectImage(job.imagePath, deps.signal)
  const size = archiveSizeFor(image.virtualSize, job.imagePath)
  let raw = image.path
  try {
    if (image.format === 'qcow2') raw = await timed(timings, 'convert', () => convert(image, job, deps))
    const bytes = (await stat(raw)).size
    if (bytes > size.sizeMB * 2 ** 20) throw new ShienError(`${raw} is larger than its archive.`, {code: 'CLOUD_IMAGE_TOO_LARGE', exit: 'badInput'})
    deps.signal.throwIfAborted()
    const created = await timed(timings, 'create', () => deps.api.createBlank({...job.archive, sizeMB: size.sizeMB}, deps.signal))
    const id = created.archive.id
    note(deps, `Archive ${id} "${created.archive.name}" (${size.sizeGiB} GiB) created in ${deps.api.zone}; sending the image over FTPS.`)
    try {
      deps.signal.throwIfAborted()
      const sent = await timed(timings, 'upload', () => sendWithRetries(raw, bytes, created.ftp, id, job, deps))
      const final = await timed(timings, 'wait', () => finish(id, job, deps))
      return result(final, size, image, sent, deps.api.zone, timings)
    } catch (error) {
      throw await cleanupAfterFailure(deps.api, created.archive, error, {keep: job.keepOnFailure, cancelled: deps.signal.aborted})
    }
  } finally {
    if (raw !== image.path) await rm(raw, {force: true})
  }
}

async function convert(image: Awaited<ReturnType<typeof inspectImage>>, job: CloudJob, deps: CloudDeps): Promise<string> {
  deps.emit({type: 'stage:start', stage: 'convert'})
  const t0 = performance.now()
  const raw = await convertToRaw(image, job.workDir, {
    signal: deps.signal,
    onPercent: (percent) => deps.emit({type: 'progress', stage: 'convert', bytes: percent, total: 100, unit: 'percent'}),
  })
  deps.emit({type: 'stage:end', stage: 'convert', ms: Math.round(performance.now() - t0)})
  return raw
}

type Sent = {bytes: number; ms: number; reply: string; attempts: number}

async function sendWithRetries(raw: string, bytes: number, first: FtpServerInfo, id: string, job: CloudJob, deps: CloudDeps): Promise<Sent> {
  const upload = deps.upload ?? ftpsUpload
  const attempts = job.settings.uploadAttempts
  const target = {port: job.settings.ftpPort, caPem: job.settings.caPem, remoteName: remoteName(job.archive.name)}
  deps.emit({type: 'stage:start', stage: 'upload'})
  let server = first
  for (let attempt = 1; ; attempt++) {
    try {
      const outcome = await upload(raw, bytes, {...target, server}, {
        signal: deps.signal,
        onBytes: (done) => deps.emit({type: 'progress', stage: 'upload', bytes: done, total: bytes}),
      })
      deps.emit({type: 'stage:end', stage: 'upload', ms: outcome.ms})
      return {...outcome, attempts: attempt}
    } catch (error) {
      if (deps.signal.aborted || !(error instanceof UploadError)) throw error
      if (!error.retryable || attempt >= attempts) throw uploadFailed(error, attempt, server.hostName)
      note(deps, `The upload broke (${error.message}); sending again with a fresh FTP password (${attempt + 1} of ${attempts}).`)
      server = await deps.api.reopenFtp(id, deps.signal)
    }
  }
}

async function finish(id: string, job: CloudJob, deps: CloudDeps): Promise<ArchiveInfo> {
  await deps.api.closeFtp(id, deps.signal)
  note(deps, `FTP closed; waiting for Sakura Cloud to check archive ${id}...`)
  return waitAvailable(deps.api, id, {
    pollMs: job.settings.pollMs,
    timeoutMs: job.settings.timeoutMs,
    signal: deps.signal,
    clock: deps.clock,
    onState: (state) => note(deps, `archive ${id}: ${state}`),
  })
}

function uploadFailed(error: UploadError, attempts: number, host: string): ShienError {
  const tries = attempts === 1 ? '' : ` (${attempts} tries, each with a fresh FTP password)`
  const message = `FTPS upload to ${host} failed${tries}: ${error.message}.`
  if (error.kind === 'tls') {
    return new ShienError(message, {
      code: 'CLOUD_FTPS_TLS',
      exit: 'connection',
      cause: error,
      suggestions: ['The FTP server\'s certificate does not prove it is the host Sakura Cloud named; shien does not send images to it.'],
    })
  }
  if (error.kind === 'local') return new ShienError(message, {code: 'CLOUD_IMAGE_UNREADABLE', exit: 'badInput', cause: error})
  return new ShienError(message, {code: 'CLOUD_UPLOAD_FAILED', exit: 'remote', cause: error, suggestions: ['Check the network to Sakura Cloud, then push again.']})
}

/** The file name on the archive's FTP server: any name is accepted, so keep it plain. */
function remoteName(name: string): string {
  return `${name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '') || 'image'}.img`
}

function note(deps: CloudDeps, message: string): void {
  deps.emit({type: 'note', stage: 'upload', message})
}

function result(
  archive: ArchiveInfo,
  size: {sizeGiB: number; sizeMB: number},
  image: {path: string; format: ImageFormat; virtualSize: number},
  sent: Sent,
  zone: string,
  timings: Timings,
): CloudPushResult {
  return {
    archive: {id: archive.id, name: archive.name, zone, ...size, availability: archive.availability},
    image: {path: image.path, format: image.format, virtualSize: image.virtualSize, sentBytes: sent.bytes},
    upload: {attempts: sent.attempts, ms: sent.ms, mibPerSecond: Number((sent.bytes / 2 ** 20 / Math.max(sent.ms / 1000, 0.001)).toFixed(1)), reply: sent.reply},
    timings,
  }
}
