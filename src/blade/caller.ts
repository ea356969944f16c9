import {userInfo} from 'node:os'

import {type BladeConfig, loadBladeConfig} from '../config/blade-config.js'
import {checkAccount} from '../names.js'
import {userPaths} from '../config/storage-layout.js'

/** The blade side runs as the student over SSH: the account is whoever runs it. */
export function bladeContext(config: BladeConfig = loadBladeConfig()) {
  const account = checkAccount(userInfo().username)
  return {account, config, paths: userPaths(config.storageRoot, account)}
}

export type BladeContext = ReturnType<typeof bladeContext>
