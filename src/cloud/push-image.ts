import {isShienError, ShienError} from '../errors.js'
import {runStages, type StageTiming} from '../pipeline/runner.js'
import type {CloudPushResult} from '../protocol/blade-steps.js'
import {archiveSizeFor} from './archive-size.js'
import {withFate} from './cleanup.js'
import {inspectImage} from './image.js'
import {type CloudContext, type CloudDeps, type CloudJob, type CloudStageId, imageStages} from './image-stages.js'

export type {CloudDeps, CloudJob} from './image-stages.js'

/**
 * The whole push: check the image (nothing larger than the largest archive reaches the API),
 * then the stages: convert a qcow2 to raw, create the archive, send it over FTPS (again with a
 * fresh password if the transfer breaks), close FTP and wait until it is available. An archive
 * that cannot be completed is deleted (unless keepOnFailure), and the error says what became of it.
 */
export async function pushImage(job: CloudJob, deps: CloudDeps): Promise<CloudPushResult> {
  let ctx: CloudContext | undefined
  try {
    const image = await inspectImage(job.imagePath, deps.signal)
    ctx = {job, deps, image, size: archiveSizeFor(image.virtualSize, job.imagePath), out: {}}
    const timings = await runStages(imageStages(image), ctx, {signal: deps.signal, onEvent: deps.emit})
    return result(ctx, timings)
  } catch (error) {
    throw failure(error, ctx, deps.signal.aborted)
  }
}

/** Once the archive exists, its cleanup has said what became of it; before, nothing was made. */
function failure(error: unknown, ctx: CloudContext | undefined, cancelled: boolean): unknown {
  if (ctx?.archiveFate) return withFate(error, ctx.archiveFate, cancelled)
  if (!cancelled || (isShienError(error) && error.code === 'CLOUD_CANCELLED')) return error
  return new ShienError('Interrupted before an archive was created; nothing was left in Sakura Cloud.', {
    code: 'CLOUD_CANCELLED',
    exit: 'cancelled',
    cause: error,
  })
}

function result(ctx: CloudContext, timings: Array<StageTiming<CloudStageId>>): CloudPushResult {
  const {image, size, out} = ctx
  const archive = out.wait
  const sent = out.upload
  if (!archive || !sent) throw new Error('Internal error: a cloud push ended without its upload and wait stages.')
  return {
    archive: {id: archive.id, name: archive.name, zone: ctx.deps.api.zone, ...size, availability: archive.availability},
    image: {path: image.path, format: image.format, virtualSize: image.virtualSize, sentBytes: sent.bytes},
    upload: {attempts: sent.attempts, ms: sent.ms, mibPerSecond: Number((sent.bytes / 2 ** 20 / Math.max(sent.ms / 1000, 0.001)).toFixed(1)), reply: sent.reply},
    timings: timings.map(({stage, ms}) => ({step: stage, ms})),
  }
}
