import {Args, Flags} from '@oclif/core'

import {planPublish} from '../../src/box/publish/plan.js'
import {formatPublishResult, publishBox, type PublishResult} from '../../src/box/publish/publish.js'
import {ShienCommand} from '../../src/ui/base-command.js'
import {bladeAccess} from '../../src/ui/host-key-prompt.js'
import {createRenderer} from '../../src/ui/renderer.js'

export default class BoxPublish extends ShienCommand {
  static override summary = 'Publish a VirtualBox base box as a version of a Vagrant catalog, with a libvirt copy for the blades.'

  static override description = `Checks the box as "shien box inspect" does, converts its disk to qcow2 for vagrant-libvirt
and the blades, and writes into --to (a folder, or sftp://[user@]host/path):
  <org>/<name>.json                           the catalog students add (versions, sha256 checksums)
  <org>/<name>/<version>/virtualbox.box       the box as given
  <org>/<name>/<version>/libvirt.box          box.img (qcow2), metadata.json, Vagrantfile
  <org>/<name>/<version>/libvirt.qcow2        read-only base for students' images on the blades
  (and libvirt.manifest, libvirt.platform.json for delta pushes)
A version holds one box per provider and architecture: an arm64 box published to a version
that has the amd64 one is added beside it (virtualbox-arm64.box, libvirt-arm64.box, ...); the
architecture published first stays the default, which Vagrant 2.3 and older take.
Files are copied under temporary names and renamed into place, the catalog last, so Vagrant
never reads half a file. Other versions and architectures stay listed; publishing a version's
architecture again is refused unless --force, which replaces that architecture's boxes only.`

  static override examples = [
    {description: 'Publish to the shared storage of the blades, served over https:', command: '<%= config.bin %> <%= command.id %> debian12.box --name os101/debian12 --version 2026.1.0 --to /gfs2/shien/boxes --base-url https://blade.example/boxes'},
    {description: 'The same from a laptop, over SSH:', command: '<%= config.bin %> <%= command.id %> debian12.box --name os101/debian12 --version 2026.1.0 --to sftp://blade1/gfs2/shien/boxes --base-url https://blade.example/boxes'},
    {description: 'A shared folder students mount at the same path (file:// URLs):', command: '<%= config.bin %> <%= command.id %> debian12.box --name os101/debian12 --version 2026.1.1 --to /srv/course/boxes'},
  ]

  static override args = {
    box: Args.string({required: true, description: 'The VirtualBox .box to publish (e.g. from shien box build).'}),
  }

  static override flags = {
    name: Flags.string({required: true, description: 'Box name, ORG/NAME (e.g. os101/debian12).'}),
    version: Flags.string({required: true, description: 'Version, as Vagrant reads them (e.g. 2026.1.0).'}),
    to: Flags.string({required: true, description: 'Folder to publish into, or sftp://[user@]host/path.'}),
    'base-url': Flags.string({description: 'URL the --to folder is served at (default for a folder: its file:// URL).'}),
    description: Flags.string({description: 'Description of the box in the catalog.'}),
    architecture: Flags.string({description: 'Architecture the catalog lists the box as, for Vagrant 2.4 and later, and that its files in the version are for (default: the one the box declares, else amd64).'}),
    libvirt: Flags.boolean({description: 'Also publish the libvirt box and the qcow2 base (--no-libvirt: VirtualBox only).', default: true, allowNo: true}),
    force: Flags.boolean({description: 'Replace the version\'s box of this architecture if it is already published (its other architectures stay).'}),
    'accept-new-host-key': Flags.boolean({description: 'Trust an unknown host key of an sftp:// destination (a changed key is still refused).'}),
  }

  async run(): Promise<PublishResult> {
    const {args, flags} = await this.parse(BoxPublish)
    const plan = planPublish({
      box: args.box, name: flags.name, version: flags.version, to: flags.to, baseUrl: flags['base-url'],
      description: flags.description, architecture: flags.architecture, force: flags.force, libvirt: flags.libvirt,
      acceptNewHostKey: flags['accept-new-host-key'], cwd: process.cwd(),
    })
    const renderer = createRenderer(this.jsonEnabled() ? 'silent' : process.stderr.isTTY ? 'tty' : 'plain')
    try {
      const result = await publishBox(plan, {signal: this.abort.signal, onEvent: renderer, ...bladeAccess(plan.acceptNewHostKey)})
      if (!this.jsonEnabled()) this.log(formatPublishResult(result))
      return result
    } finally {
      renderer.stop()
    }
  }
}
