import {ExitCode, type ExitCodeName, ShienError} from '../errors.js'
import type {ArchiveApi, ArchiveInfo} from './archive-api.js'

/** How long deleting a half-made archive may take once the push has failed or was cancelled. */
const CLEANUP_MS = 120_000

/** What became of an archive that could not be completed, in words for the error. */
export interface ArchiveFate {
  fate: string
  suggestion?: string
}

/**
 * After a push that cannot complete: deletes the archive (unless `keep`) and says which archive
 * was deleted or left. It runs on its own deadline: the push's signal may be the one that was
 * aborted.
 */
export async function disposeArchive(api: ArchiveApi, archive: ArchiveInfo, keep: boolean): Promise<ArchiveFate> {
  const which = `Archive ${archive.id} "${archive.name}" in ${api.zone}`
  if (keep) {
    return {
      fate: `${which} was left as it is (--keep-on-failure).`,
      suggestion: `Delete it in the control panel (or: usacloud archive delete --zone ${api.zone} ${archive.id}) when you no longer need it.`,
    }
  }
  try {
    await api.delete(archive.id, AbortSignal.timeout(CLEANUP_MS))
    return {fate: `${which} was deleted.`}
  } catch (deleteError) {
    return {
      fate: `${which} could not be deleted (${(deleteError as Error).message}).`,
      suggestion: `Delete it in the control panel (or: usacloud archive delete --zone ${api.zone} ${archive.id}).`,
    }
  }
}

/** The error to throw for a push that ended after its archive was made: it says what became of it, with the original as its cause. */
export function withFate(error: unknown, {fate, suggestion}: ArchiveFate, cancelled: boolean): ShienError {
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
