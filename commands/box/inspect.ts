import {Args} from '@oclif/core'

import {inspectBox, type BoxInfo} from '../../src/box/inspect.js'
import {formatBoxInfo} from '../../src/box/format-info.js'
import {ShienCommand} from '../../src/ui/base-command.js'

export default class BoxInspect extends ShienCommand {
  static override summary = 'Check a Vagrant box and show what shien would push from it.'

  static override description = `Reads the .box once, start to end, and runs the same checks as "shien push" before anything
is uploaded:
  - every entry is a plain file or folder inside the box (no links, no "../", no absolute paths),
  - box.ovf is plain XML (no DOCTYPE or entities) and names disks that are in the box,
  - every disk is a sparse VMDK (streamOptimized or monolithicSparse) that reads only itself,
    never a text descriptor that could point at another file on the blade.
It then prints the VM (CPUs, memory, firmware) and its disks. A vagrant_private_key inside the
box is reported: shien never uploads it.

Exit code 3 means the box was refused; the message says why and what to do.`

  static override examples = [
    {description: 'Check a box you made with "vagrant package":', command: '<%= config.bin %> <%= command.id %> package.box'},
    {description: 'Get the details as JSON (disks, capacities, private keys found):', command: '<%= config.bin %> <%= command.id %> ~/boxes/web.box --json'},
  ]

  static override args = {
    box: Args.string({required: true, description: 'Path of the .box file (tar or tar.gz).'}),
  }

  async run(): Promise<BoxInfo> {
    const {args} = await this.parse(BoxInspect)
    const info = await inspectBox(args.box, {signal: this.abort.signal})
    if (!this.jsonEnabled()) this.log(formatBoxInfo(info))
    return info
  }
}
