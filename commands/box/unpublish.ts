import {Flags} from '@oclif/core'

import {formatUnpublishResult, unpublishBox, type UnpublishResult} from '../../src/box/publish/unpublish.js'
import {planUnpublish} from '../../src/box/publish/unpublish-plan.js'
import {ShienCommand} from '../../src/ui/base-command.js'
import {bladeAccess} from '../../src/ui/host-key-prompt.js'
import {createRenderer} from '../../src/ui/renderer.js'

export default class BoxUnpublish extends ShienCommand {
  static override summary = 'Remove one published version of a box from its Vagrant catalog and the destination.'

  // One line per paragraph and per step: oclif wraps each line to the terminal's width.
  static override description = [
    'The reverse of "shien box publish", with the same --name and --to (a folder, or sftp://[user@]host/path). Under the catalog\'s lock, which a publish of the same box also takes:',
    '  1. <org>/<name>.json is written without the version under a temporary name and renamed over the old one, so Vagrant never sees a listed version whose box is gone;',
    '  2. <org>/<name>/<version>/ is removed with everything in it (every architecture\'s virtualbox.box, libvirt.box, libvirt.qcow2, libvirt.manifest, libvirt.platform.json; arm64\'s as virtualbox-arm64.box, ...), and <org>/<name>/ once no version is left.',
    'After the last version the catalog stays, with an empty versions list: Vagrant still reads it ("vagrant box outdated" finds nothing newer, "vagrant box add" finds no version to add), and the next publish adds to it.',
    '',
    'Refused with nothing changed while students\' images on the blade are qcow2 overlays of one of the version\'s bases (BASE_IN_USE, naming account and slot), and while some of their images cannot be read to tell (BASE_USERS_UNCHECKED): removing a base breaks every overlay of it for good. Students\' folders are private, so run it where they can be read: as root on the blade. A version the catalog does not list is refused too (VERSION_NOT_PUBLISHED).',
  ].join('\n')

  static override examples = [
    {description: 'On the blade, as root, so that every student\'s image can be checked:', command: 'sudo <%= config.bin %> <%= command.id %> --name os101/debian12 --version 2026.1.0 --to /gfs2/shien/boxes'},
    {description: 'From a laptop, a version published over SSH to a web server (no students\' images there):', command: '<%= config.bin %> <%= command.id %> --name os101/debian12 --version 2026.1.0 --to sftp://www1/srv/www/boxes'},
    {description: 'A version published to a course folder, with the result as JSON:', command: '<%= config.bin %> <%= command.id %> --name os101/debian12 --version 2026.1.1 --to /srv/course/boxes --json'},
  ]

  static override flags = {
    name: Flags.string({required: true, description: 'Box name, ORG/NAME, as published (e.g. os101/debian12).'}),
    version: Flags.string({required: true, description: 'The version to remove (e.g. 2026.1.0).'}),
    to: Flags.string({required: true, description: 'The folder it was published into, or sftp://[user@]host/path.'}),
    'accept-new-host-key': Flags.boolean({description: 'Trust an unknown host key of an sftp:// destination (a changed key is still refused).'}),
  }

  async run(): Promise<UnpublishResult> {
    const {flags} = await this.parse(BoxUnpublish)
    const plan = planUnpublish({name: flags.name, version: flags.version, to: flags.to, acceptNewHostKey: flags['accept-new-host-key'], cwd: process.cwd()})
    const renderer = createRenderer(this.jsonEnabled() ? 'silent' : process.stderr.isTTY ? 'tty' : 'plain')
    try {
      const result = await unpublishBox(plan, {signal: this.abort.signal, onEvent: renderer, ...bladeAccess(plan.acceptNewHostKey)})
      if (!this.jsonEnabled()) this.log(formatUnpublishResult(result))
      return result
    } finally {
      renderer.stop()
    }
  }
}
