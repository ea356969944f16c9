import {Flags} from '@oclif/core'

import {ShienError} from '../errors.js'
import {ShienCommand} from '../ui/base-command.js'
import {BLADE_PROTOCOL, PACKAGE_VERSION} from './protocol.js'

/**
 * The blade side of a push, run by the laptop over SSH as the student. Every call names the
 * protocol the laptop speaks; a blade with another one refuses before doing anything.
 */
export abstract class BladeCommand extends ShienCommand {
  static override hidden = true

  static override baseFlags = {
    ...ShienCommand.baseFlags,
    protocol: Flags.integer({description: 'Blade protocol the laptop speaks.', required: true}),
  }

  protected checkProtocol(protocol: number): void {
    if (protocol !== BLADE_PROTOCOL) {
      throw new ShienError(
        `This blade runs shien ${PACKAGE_VERSION} (blade protocol ${BLADE_PROTOCOL}); your laptop speaks protocol ${protocol}.`,
        {code: 'VERSION_MISMATCH', exit: 'remote', suggestions: ['Install the same shien version on your laptop as on the blade (shien --version on each).']},
      )
    }
  }
}
