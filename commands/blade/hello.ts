import {hostname} from 'node:os'

import {BladeCommand} from '../../src/blade/blade-command.js'
import {clusterOf, clusterView} from '../../src/cluster/blades.js'
import {archSettings, hostFacts} from '../../src/config/blade-arch.js'
import {bladeContext} from '../../src/blade/caller.js'
import {storageSpace} from '../../src/blade/incoming.js'
import {packageInfo} from '../../src/package-info.js'
import {BLADE_PROTOCOL, type HelloResult} from '../../src/protocol/blade-steps.js'

export default class BladeHello extends BladeCommand {
  static override description = 'Report the blade side\'s version and the caller\'s storage (run by shien push).'

  async run() {
    const {flags} = await this.parse(BladeHello)
    const ctx = bladeContext()
    const arch = archSettings(ctx.config, hostFacts())
    const cluster = clusterView(clusterOf(ctx.config, {hostname: hostname(), native: arch.native}))
    const result: HelloResult = {
      version: packageInfo().version, protocol: BLADE_PROTOCOL, account: ctx.account, home: ctx.paths.home,
      arch,
      ...(cluster === undefined ? {} : {cluster}),
      // A folder not made yet (an account never provisioned) has no room to report.
      space: await storageSpace(ctx).catch(() => undefined),
    }
    // The version is reported before the check, so the laptop can name both in its error.
    if (flags.protocol === BLADE_PROTOCOL) return result
    this.checkProtocol(flags.protocol)
    return result
  }
}
