import {Flags} from '@oclif/core'

import {ShienError} from '../errors.js'
import {matchBladeSuggestions} from '../install-commands.js'
import {packageInfo} from '../package-info.js'
import {BLADE_PROTOCOL} from '../protocol/blade-steps.js'
import {ShienCommand} from '../ui/base-command.js'

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
   * Whether the laptop's end closing stops the step. The laptop never closes a step's stdin
   * while it waits for it (a step that reads stdin, cloud-push, opts out), so its end is the SSH
   * connection's: when the laptop dies or the network drops, sshd closes it, and the step stops
   * as on Ctrl-C, its appliance and queue place with it, and removes what it half made. Without
   * this it would run to the end alone (sshd signals no process of a session without a pty).
   */
  protected stopsWhenLaptopGoes(): boolean {
    return true
  }

  public override async init(): Promise<void> {
    await super.init()
    if (!this.stopsWhenLaptopGoes() || process.stdin.isTTY) return
    const gone = () => this.abort.abort(new Error('the connection to the laptop was lost'))
    process.stdin.once('end', gone)
    process.stdin.once('error', gone)
    // Nothing is expected on it; what comes is dropped, and the stream must flow to see its end.
    process.stdin.on('data', () => undefined)
    process.stdin.resume()
    // Watching it must not keep the step alive once its work is done.
    ;(process.stdin as {unref?: () => void}).unref?.()
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
