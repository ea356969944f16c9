import {Args} from '@oclif/core'

import {formatCatalogInfo, inspectCatalog, isCatalogInput, type CatalogInfo} from '../../src/box/catalog-info.js'
import {inspectBox, type BoxInfo} from '../../src/box/inspect.js'
import {formatBoxInfo} from '../../src/box/format-info.js'
import {ShienCommand} from '../../src/ui/base-command.js'

export default class BoxInspect extends ShienCommand {
  static override summary = 'Check a Vagrant box, or read a box catalog, and show what is in it.'

  static override description = `Reads the .box once, start to end, and runs the same checks as "shien push" before anything
is uploaded:
  - every entry is a plain file or folder inside the box (no links, no "../", no absolute paths),
  - the box is one a Vagrant provider shien takes packaged: VirtualBox (box.ovf and VMDKs),
    VMware (.vmx and a single or split VMDK), Parallels (.pvm bundle) or libvirt/qemu (box.img),
  - its XML (OVF, Parallels descriptors) is plain XML (no DOCTYPE or entities),
  - every disk reads nothing but files of the box: a sparse VMDK or a split one whose extents
    are all beside it, a Parallels image inside its bundle, a qcow2 with no backing or data file,
  - metadata.json, the OVF and the VMX agree on the provider and the architecture.
It then prints the provider, the architecture and where it is declared, the VM (CPUs, memory,
firmware) and its disks. A vagrant_private_key inside the box is reported: shien never uploads
it. The formats and every refusal: docs/box-formats.md.

Given a catalog instead (a .json file, or a file://, http:// or https:// URL), it checks the
catalog as Vagrant reads it and lists its versions, providers and architectures, downloading no
box (shien box verify checks the boxes).

Exit code 3 means the box or catalog was refused; the message says why and what to do.`

  static override examples = [
    {description: 'Check a box you made with "vagrant package":', command: '<%= config.bin %> <%= command.id %> package.box'},
    {description: 'Get the details as JSON (disks, capacities, private keys found):', command: '<%= config.bin %> <%= command.id %> ~/boxes/web.box --json'},
    {description: 'List the versions of a published catalog:', command: '<%= config.bin %> <%= command.id %> https://blade.example/boxes/os101/debian12.json'},
  ]

  static override args = {
    box: Args.string({required: true, description: 'Path of the .box file (tar or tar.gz), or path or URL of a catalog.'}),
  }

  async run(): Promise<BoxInfo | CatalogInfo> {
    const {args} = await this.parse(BoxInspect)
    if (await isCatalogInput(args.box)) {
      const catalog = await inspectCatalog(args.box, this.abort.signal)
      if (!this.jsonEnabled()) this.log(formatCatalogInfo(catalog))
      return catalog
    }
    const info = await inspectBox(args.box, {signal: this.abort.signal})
    if (!this.jsonEnabled()) this.log(formatBoxInfo(info))
    return info
  }
}
