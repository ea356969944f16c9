import {realpath} from 'node:fs/promises'

import {openDirectory} from '../directory/open-directory.js'
import {ShienError} from '../errors.js'
import {loadTrustedConfig} from '../privileged/trusted-config.js'
import {defaultGroups, provision, type ProvisionReport} from './provision.js'

export interface ProvisionInputs {
  configPath: string
  groups: string[]
  uid: number
  signal: AbortSignal
}

/** `shien admin provision`: checks it runs as root, loads the blade configuration, provisions. */
export async function runProvision(input: ProvisionInputs): Promise<ProvisionReport> {
  if (input.uid !== 0) {
    throw new ShienError('shien admin provision creates and chowns folders of other accounts: it must run as root.', {
      code: 'NOT_ROOT',
      exit: 'refused',
      suggestions: ['On the blade: sudo shien admin provision --group GROUP'],
    })
  }
  const config = loadTrustedConfig(input.configPath)
  const root = await realpath(config.storageRoot).catch(() => {
    throw new ShienError(`The storage root ${config.storageRoot} is not there.`, {
      code: 'STORAGE_MISSING',
      exit: 'remote',
      suggestions: ['Mount the shared storage first (or create the folder, root-owned, mode 0755).'],
    })
  })
  const groups = input.groups.length > 0 ? input.groups : defaultGroups(config)
  return provision(groups, {config, root, directory: openDirectory(config), signal: input.signal})
}
