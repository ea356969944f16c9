import {ShienError} from '../errors.js'
import type {ArchiveApi, ArchiveInfo} from './archive-api.js'
import {type Clock, realClock} from './rate-limit.js'

/**
 * Polls `GET /archive/{id}` until Sakura Cloud reports the image `available`. `failed` ends the
 * wait at once (the official Go waiter keeps polling it until its timeout), and so does the
 * timeout; both are errors the caller turns into a cleanup.
 */
export async function waitAvailable(
  api: ArchiveApi,
  id: string,
  opts: {pollMs: number; timeoutMs: number; signal?: AbortSignal; clock?: Clock; onState?: (availability: string) => void},
): Promise<ArchiveInfo> {
  const clock = opts.clock ?? realClock
  const deadline = clock.now() + opts.timeoutMs
  let last = ''
  for (;;) {
    const archive = await api.get(id, opts.signal)
    if (archive.availability !== last) opts.onState?.(archive.availability)
    last = archive.availability
    if (archive.availability === 'available') return archive
    if (archive.availability === 'failed') {
      throw new ShienError(`Sakura Cloud could not use the uploaded image: archive ${id} is "failed".`, {
        code: 'CLOUD_ARCHIVE_FAILED',
        exit: 'remote',
        suggestions: ['Check that the image is a raw disk that boots (qemu-img info), then push it again.'],
      })
    }
    if (clock.now() + opts.pollMs > deadline) {
      throw new ShienError(`Archive ${id} was still "${archive.availability}" after ${Math.round(opts.timeoutMs / 1000)} s.`, {
        code: 'CLOUD_WAIT_TIMEOUT',
        exit: 'remote',
        suggestions: ['Wait longer with --timeout SECONDS (large images take a while), or use --keep-on-failure and check it in the control panel.'],
      })
    }
    await clock.sleep(opts.pollMs, opts.signal)
  }
}
