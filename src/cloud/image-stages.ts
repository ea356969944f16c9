import {rm, stat} from 'node:fs/promises'

import {ShienError} from '../errors.js'
import type {Emit} from '../pipeline/events.js'
import {need} from '../pipeline/outputs.js'
import type {Stage, StageIO} from '../pipeline/runner.js'
import type {CloudPushResult} from '../protocol/blade-steps.js'
import type {ArchiveApi, ArchiveInfo, FtpServerInfo} from './archive-api.js'
import {type ArchiveFate, disposeArchive} from './cleanup.js'
import {ftpsUpload, UploadError, type Uploader} from './ftps-upload.js'
import {convertToRaw, type ImageInfo} from './image.js'
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
  emit: Emit
  clock?: Clock
  /**
   * Runs the qemu-img conversion once the blade's push queue admits it (the blade side of
   * `shien cloud push SLOT`); an image pushed from a laptop converts at once.
   */
  admit?: <T>(work: () => Promise<T>) => Promise<T>
}

/** The stages are the steps the result times. */
export type CloudStageId = CloudPushResult['timings'][number]['step']

/** What the FTPS upload did, as the result reports it. */
export interface Sent {
  bytes: number
  ms: number
  reply: string
  attempts: number
}

/** What each stage hands on, under its own id. */
export interface CloudOutputs {
  /** The raw file a qcow2 became; removed when the push ends. */
  convert: {raw: string}
  create: {archive: ArchiveInfo; ftp: FtpServerInfo; bytes: number}
  upload: Sent
  wait: ArchiveInfo
}

/** The state a cloud push carries from stage to stage, after the image was checked. */
export interface CloudContext {
  job: CloudJob
  deps: CloudDeps
  image: ImageInfo
  /** The archive that holds the image's virtual size. */
  size: {sizeGiB: number; sizeMB: number}
  out: Partial<CloudOutputs>
  /** What the create stage's cleanup did with an archive that could not be completed. */
  archiveFate?: ArchiveFate
}

type CloudStage = Stage<CloudContext, CloudStageId>

/** The stages for an image: a qcow2 is converted to raw first. */
export function imageStages(image: ImageInfo): CloudStage[] {
  return [...(image.format === 'qcow2' ? [convertStage] : []), createStage, uploadStage, waitStage]
}

/** The file the upload sends: the raw conversion, or the image as it is. */
const rawOf = (ctx: CloudContext) => ctx.out.convert?.raw ?? ctx.image.path

const convertStage: CloudStage = {
  id: 'convert',
  async run(ctx, io) {
    const admit = ctx.deps.admit ?? ((work) => work())
    const raw = await admit(() => convertToRaw(ctx.image, ctx.job.workDir, {
      signal: io.signal,
      onPercent: (percent) => io.emit({type: 'progress', stage: 'convert', bytes: percent, total: 100, unit: 'percent'}),
    }))
    ctx.out.convert = {raw}
  },
  async cleanup(ctx) {
    if (ctx.out.convert) await rm(ctx.out.convert.raw, {force: true})
  },
}

/** Checks that the image fits (nothing larger reaches the API), then creates a blank archive. */
const createStage: CloudStage = {
  id: 'create',
  async run(ctx, io) {
    const {api} = ctx.deps
    const raw = rawOf(ctx)
    const bytes = (await stat(raw)).size
    if (bytes > ctx.size.sizeMB * 2 ** 20) throw new ShienError(`${raw} is larger than its archive.`, {code: 'CLOUD_IMAGE_TOO_LARGE', exit: 'badInput'})
    io.signal.throwIfAborted()
    const created = await api.createBlank({...ctx.job.archive, sizeMB: ctx.size.sizeMB}, io.signal)
    ctx.out.create = {...created, bytes}
    const {id, name} = created.archive
    io.emit({type: 'note', stage: 'create', message: `Archive ${id} "${name}" (${ctx.size.sizeGiB} GiB) created in ${api.zone}; sending the image over FTPS.`})
  },
  /** An archive that cannot be completed is deleted (unless keepOnFailure); the error will say so. */
  async cleanup(ctx, outcome) {
    const created = ctx.out.create
    if (outcome === 'ok' || !created) return
    ctx.archiveFate = await disposeArchive(ctx.deps.api, created.archive, ctx.job.keepOnFailure)
  },
}

/** Sends the image over FTPS, again with a fresh password if the transfer breaks. */
const uploadStage: CloudStage = {
  id: 'upload',
  async run(ctx, io) {
    ctx.out.upload = await sendWithRetries(ctx, need(ctx.out, 'create'), io)
  },
}

/** Closes FTP and waits until Sakura Cloud has checked the image. */
const waitStage: CloudStage = {
  id: 'wait',
  async run(ctx, io) {
    const {api, clock} = ctx.deps
    const {id} = need(ctx.out, 'create').archive
    const note = (message: string) => io.emit({type: 'note', stage: 'wait', message})
    await api.closeFtp(id, io.signal)
    note(`FTP closed; waiting for Sakura Cloud to check archive ${id}...`)
    ctx.out.wait = await waitAvailable(api, id, {
      pollMs: ctx.job.settings.pollMs,
      timeoutMs: ctx.job.settings.timeoutMs,
      signal: io.signal,
      clock,
      onState: (state) => note(`archive ${id}: ${state}`),
    })
  },
}

async function sendWithRetries(ctx: CloudContext, created: CloudOutputs['create'], io: StageIO): Promise<Sent> {
  const {job, deps} = ctx
  const upload = deps.upload ?? ftpsUpload
  const attempts = job.settings.uploadAttempts
  const target = {port: job.settings.ftpPort, caPem: job.settings.caPem, remoteName: remoteName(job.archive.name)}
  const {bytes, archive} = created
  let server = created.ftp
  for (let attempt = 1; ; attempt++) {
    try {
      const outcome = await upload(rawOf(ctx), bytes, {...target, server}, {
        signal: io.signal,
        onBytes: (done) => io.emit({type: 'progress', stage: 'upload', bytes: done, total: bytes}),
      })
      return {...outcome, attempts: attempt}
    } catch (error) {
      if (io.signal.aborted || !(error instanceof UploadError)) throw error
      if (!error.retryable || attempt >= attempts) throw uploadFailed(error, attempt, server.hostName)
      io.emit({type: 'note', stage: 'upload', message: `The upload broke (${error.message}); sending again with a fresh FTP password (${attempt + 1} of ${attempts}).`})
      server = await deps.api.reopenFtp(archive.id, io.signal)
    }
  }
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
