import {ShienError} from '../../errors.js'
import {parseRunArgs, type RunRequest} from '../../protocol/ie-docker-run.js'

/**
 * How `shien container run` reaches the blade: `reply` is one `ie-docker --json run` whose
 * result comes back as JSON (detached containers), `terminal` runs `ie-docker run` in a
 * terminal on the blade connected to this one (-t, as in -it).
 */
export type RunMode = 'reply' | 'terminal'

/**
 * The mode for run's arguments (docker's, shien's own taken out). They are checked here first
 * with ie-docker's own parser, so a flag it refuses is named, with the blade's code and exit
 * status, before any connection; the blade checks them again. Neither -d nor -t is refused
 * here: over SSH nothing else would carry the container's output.
 */
export function runMode(args: readonly string[]): RunMode {
  const req: RunRequest = parseRunArgs(args)
  if (req.detach) return 'reply'
  if (req.tty) return 'terminal'
  throw new ShienError(`Over SSH, add -d to run the container in the background, or -it to use it from this terminal${req.interactive ? ' (-i needs -t here)' : ''}.`, {
    code: 'USAGE',
    exit: 'usage',
    suggestions: ['In the background: shien container run -d --name web IMAGE', 'A shell in it: shien container run -it --name sh IMAGE /bin/sh'],
  })
}
