import {Flags} from '@oclif/core'

import {BladeCommand} from '../../src/blade/blade-command.js'
import type {StepFlags, StepResult} from '../../src/protocol/blade-steps.js'
import {bladeContext} from '../../src/blade/caller.js'
import {pushSlotImage} from '../../src/cloud/blade-push.js'

export default class BladeCloudPush extends BladeCommand {
  static override description = 'Push a slot\'s image to Sakura Cloud as an archive (run by shien cloud push; the API key comes on stdin).'

  // Its stdin carries the request, and its end is how the laptop asks it to stop (remoteExec).
  protected override stopsWhenLaptopGoes(): boolean {
    return false
  }

  static override flags = {
    slot: Flags.string({required: true, description: 'Slot whose image is pushed (01, 02, ...).'}),
    zone: Flags.string({required: true, description: 'Sakura Cloud zone (is1a, is1b, tk1a, ...).'}),
    name: Flags.string({required: true, description: 'Name of the new archive.'}),
    description: Flags.string({description: 'Description of the new archive.'}),
    'keep-on-failure': Flags.boolean({description: 'Leave the archive when the push fails.'}),
  }

  async run(): Promise<StepResult<'cloud-push'>> {
    const {flags} = await this.parse(BladeCloudPush)
    this.checkProtocol(flags.protocol)
    flags satisfies StepFlags<'cloud-push'>
    const options = {...flags, keepOnFailure: flags['keep-on-failure']}
    return pushSlotImage(bladeContext(), options, {input: process.stdin, abort: this.abort})
  }
}
