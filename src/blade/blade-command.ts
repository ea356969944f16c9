import {Flags} from '@oclif/core'

import {ShienError} from '../errors.js'
import {matchBladeSuggestions} from '../install-commands.js'
import {packageInfo} from '../package-info.js'
import {BLADE_PROTOCOL} from '../protocol/blade-steps.js'
import {ShienCommand} from '../ui/base-command.js'
import {abortWhenInputEnds} from './laptop-gone.js'

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

  /**
   * Whether the laptop's end closing stops the step (laptop-gone.ts). A step that reads its
   * stdin (cloud-push) opts out: its end is how the laptop asks it to stop.
   */
  protected stopsWhenLaptopGoes(): boolean {
    return true
  }

  public override async init(): Promise<void> {
    await super.init()
    if (this.stopsWhenLaptopGoes()) abortWhenInputEnds(process.stdin, this.abort)
  }

  protected checkProtocol(protocol: number): void {
    if (protocol !== BLADE_PROTOCOL) {
      throw new ShienError(
        `This blade runs shien ${packageInfo().version} (blade protocol ${BLADE_PROTOCOL}); your laptop speaks protocol ${protocol}.`,
        {code: 'VERSION_MISMATCH', exit: 'remote', suggestions: matchBladeSuggestions(packageInfo().version)},
      )
    }
  }
}
