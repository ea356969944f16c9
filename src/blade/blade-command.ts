import {Flags} from '@oclif/core'

import {ShienError} from '../errors.js'
import {ShienCommand} from '../ui/base-command.js'
import {packageInfo} from '../package-info.js'
import {BLADE_PROTOCOL} from '../protocol/blade-steps.js'

/**
 * The blade side of a push, run by the laptop over SSH as the student. Every call names the
 * protocol the laptop speaks; a blade with another one refuses before doing anything. Each
 * step's command returns `StepResult<'step'>` and its parsed flags satisfy `StepFlags<'step'>`
 * (protocol/blade-steps.ts), the map the laptop's BladeClient.call is typed by.
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
        `This blade runs shien ${packageInfo().version} (blade protocol ${BLADE_PROTOCOL}); your laptop speaks protocol ${protocol}.`,
        {code: 'VERSION_MISMATCH', exit: 'remote', suggestions: ['Install the same shien version on your laptop as on the blade (shien --version on each).']},
      )
    }
  }
}
