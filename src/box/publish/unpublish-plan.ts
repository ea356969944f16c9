import {homedir} from 'node:os'

import {checkName, checkVersion, parseDestination, pathsFor, Problems, type PublishDestination, type VersionPaths} from './plan.js'

/** What `shien box unpublish` removes, and from where; decided before anything is read. */
export interface UnpublishPlan {
  name: string
  version: string
  destination: PublishDestination
  acceptNewHostKey: boolean
  /** The same paths `shien box publish` wrote the version to. */
  layout: VersionPaths
}

export interface UnpublishInput {
  name: string
  version: string
  /** A folder or sftp://[user@]host/path, as given to `shien box publish --to`. */
  to: string
  acceptNewHostKey?: boolean
  cwd: string
  home?: string
}

/** Checks the name, version and destination as publish does, reporting every problem at once. */
export function planUnpublish(input: UnpublishInput): UnpublishPlan {
  const problems = new Problems()
  problems.attempt(() => checkName(input.name))
  problems.attempt(() => checkVersion(input.version))
  const destination = problems.attempt(() => parseDestination(input.to, input.cwd, input.home ?? homedir()))
  problems.throwIfAny('UNPUBLISH_BAD_INPUT', 'shien box unpublish')
  if (!destination) throw new Error('Internal error: an unpublish plan without a destination.')
  return {
    name: input.name,
    version: input.version,
    destination,
    acceptNewHostKey: input.acceptNewHostKey ?? false,
    layout: pathsFor(destination.root, input.name, input.version),
  }
}
