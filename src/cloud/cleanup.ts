import {ExitCode, type ExitCodeName, ShienError} from '../errors.js'
import type {ArchiveApi, ArchiveInfo} from './archive-api.js'

/** How long deleting a half-made archive may take once the push has failed or was cancelled. */
const CLEANUP_MS = 120_000

/**
 * After a push that cannot complete: deletes the archive (unless `keep`), and returns the error
 * to throw, which says which archive was deleted or left and keeps the original as its cause.
 * It runs on its own deadline: the push's signal may be the one that was aborted.
 */
export async function cleanupAfterFailure(
  api: ArchiveApi,
  archive: ArchiveInfo,
  error: unknown,
  opts: {keep: boolean; cancelled: boolean},
): Promise<ShienError> {
  const which = `Archive ${archive.id} "${archive.name}" in ${api.zone}`
  let fate: string
  let suggestion: string | undefined
  if (opts.keep) {
    fate = `${which} was left as it is (--keep-on-failure).`
    suggestion = `Delete it in the control panel (or: usacloud archive delete --zone ${api.zone} ${archive.id}) when you no longer need it.`
  } else {
    try {
      await api.delete(archive.id, AbortSignal.timeout(CLEANUP_MS))
      fate = `${which} was deleted.`
    } catch (deleteError) {
      fate = `${which} could not be deleted (${(deleteError as Error).message}).`
      suggestion = `Delete it in the control panel (or: usacloud archive delete --zone ${api.zone} ${archive.id}).`
    }
  }
  return withFate(error, fate, suggestion, opts.cancelled)
}

function withFate(error: unknown, fate: string, suggestion: string | undefined, cancelled: boolean): ShienError {
  if (cancelled) {
    return new ShienError(`Interrupted. ${fate}`, {
      code: 'CLOUD_CANCELLED',
      exit: 'cancelled',
      cause: error,
      suggestions: suggestion ? [suggestion] : ['Run the same command again to push the image from the start.'],
    })
  }
  const base = error instanceof ShienError ? error : new ShienError((error as Error).message ?? String(error), {code: 'CLOUD_FAILED', cause: error})
  // Keep the original exit code: a refusal stays a refusal.
  const exit = (Object.entries(ExitCode).find(([, code]) => code === base.exitCode)?.[0] ?? 'failure') as ExitCodeName
  return new ShienError(`${base.message} ${fate}`, {
    code: base.code,
    exit,
    cause: error,
    suggestions: [...base.suggestions, ...(suggestion ? [suggestion] : [])],
  })
}
