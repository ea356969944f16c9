import {ShienError} from '../../errors.js'
import {parseRunArgs, type RunRequest} from '../../protocol/ie-docker-run.js'

/**
 * How `shien container run` reaches the blade: `reply` is one `ie-docker --json run` whose
 * result comes back as JSON (detached containers), `terminal` runs `ie-docker run` in a
 * terminal on the blade connected to this one (-t, as in -it).
 */
export type RunMode = 'reply' | 'terminal'

/**
 * The mode for run's arguments (those after `--`). Arguments ie-docker would refuse are sent
 * as a `reply` run, so the refusal comes from the blade with its own code and exit status.
 * Neither -d nor -t is refused here: over SSH nothing else would carry the container's output.
 */
export function runMode(args: readonly string[]): RunMode {
  let req: RunRequest
  try {
    req = parseRunArgs(args)
  } catch {
    return 'reply'
  }
  if (req.detach) return 'reply'
  if (req.tty) return 'terminal'
  throw new ShienError(`Over SSH, add -d to run the container in the background, or -it to use it from this terminal${req.interactive ? ' (-i needs -t here)' : ''}.`, {
    code: 'USAGE',
    exit: 'usage',
    suggestions: ['In the background: shien container run -- -d --name web IMAGE', 'A shell in it: shien container run -- -it --name sh IMAGE /bin/sh'],
  })
}
