import {Args, Flags} from '@oclif/core'

import {cloudPush, type CloudPushReport} from '../../src/cloud/cloud-push.js'
import {planCloudPush} from '../../src/cloud/plan.js'
import {ShienCommand} from '../../src/ui/base-command.js'
import {bladeAccess, jumpFlag} from '../../src/ui/host-key-prompt.js'
import {createRenderer} from '../../src/ui/renderer.js'

export default class CloudPush extends ShienCommand {
  static override summary = 'Send a VM image to Sakura Cloud as an archive, over FTPS.'

  static override description = `Creates an archive of the right size in the zone, sends the image over FTPS (certificate
verified; sent again with a fresh FTP password if the transfer breaks), closes FTP and waits until
Sakura Cloud reports the archive available. A qcow2 is converted to a sparse raw image first.
An archive that cannot be completed is deleted, unless --keep-on-failure.

SOURCE is a slot (01): its image is pushed from the blade, over the same SSH connection as
shien push (--host, .shien.json or SHIEN_HOST). Anything else is a local image file.

The API key comes from SAKURACLOUD_ACCESS_TOKEN and SAKURACLOUD_ACCESS_TOKEN_SECRET, or from
your usacloud profile (~/.usacloud/<profile>/config.json, readable only by you); never from
the command line. The zone can also come from SAKURACLOUD_ZONE or the profile's Zone.`

  static override examples = [
    {description: 'Slot 01\'s image, pushed from the blade:', command: '<%= config.bin %> cloud push 01 --zone is1a --name os101-e195701'},
    {description: 'A local image file:', command: '<%= config.bin %> cloud push ./disk.img --zone is1b'},
  ]

  static override args = {
    source: Args.string({required: true, description: 'A slot (01, 02, ...) on the blade, or a raw or qcow2 image file.'}),
  }

  static override flags = {
    zone: Flags.string({char: 'z', description: 'Zone: is1a, is1b, tk1a, tk1b or tk1v (default: SAKURACLOUD_ZONE, the profile\'s Zone).'}),
    name: Flags.string({description: 'Archive name (default: ACCOUNT-SLOT, or the file name).'}),
    description: Flags.string({description: 'Archive description.'}),
    'keep-on-failure': Flags.boolean({description: 'Leave the archive in place when the push fails (it is deleted by default).'}),
    timeout: Flags.integer({description: 'Seconds to wait for the archive to become available after the upload.', default: 3600, min: 1}),
    profile: Flags.string({description: 'usacloud profile to read the API key from (default: SAKURACLOUD_PROFILE, then the current one).'}),
    'ca-file': Flags.string({description: 'Also trust this CA (PEM) for the API and FTPS, e.g. behind a TLS-inspecting proxy.'}),
    'work-dir': Flags.string({description: 'Where a qcow2 is converted to raw (default: next to the image).'}),
    host: Flags.string({char: 'H', description: 'Blade holding the slot: a Host from ~/.ssh/config, HOST, USER@HOST or HOST:PORT.'}),
    jump: jumpFlag,
    'accept-new-host-key': Flags.boolean({description: 'Trust an unknown blade host key without asking (a changed key is still refused).'}),
  }

  async run(): Promise<CloudPushReport> {
    const {args, flags} = await this.parse(CloudPush)
    const plan = planCloudPush({
      source: args.source,
      zone: flags.zone,
      name: flags.name,
      description: flags.description,
      keepOnFailure: flags['keep-on-failure'],
      timeoutSeconds: flags.timeout,
      caFile: flags['ca-file'],
      profile: flags.profile,
      host: flags.host,
      jump: flags.jump,
      workDir: flags['work-dir'],
      acceptNewHostKey: flags['accept-new-host-key'],
      cwd: process.cwd(),
      env: process.env,
    })
    const renderer = createRenderer(this.jsonEnabled() ? 'silent' : process.stderr.isTTY ? 'tty' : 'plain')
    try {
      const result = await cloudPush(plan, {
        signal: this.abort.signal,
        emit: renderer,
        ...bladeAccess(plan.acceptNewHostKey),
      })
      if (!this.jsonEnabled()) this.printResult(result)
      return result
    } finally {
      renderer.stop()
    }
  }

  private printResult(r: CloudPushReport): void {
    const gib = (r.image.sentBytes / 2 ** 30).toFixed(2)
    this.log(`Archive ${r.archive.id} "${r.archive.name}" is ${r.archive.availability} in ${r.archive.zone} (${r.archive.sizeGiB} GiB).`)
    this.log(`Sent ${gib} GiB in ${(r.upload.ms / 1000).toFixed(1)} s (${r.upload.mibPerSecond} MiB/s, ${r.upload.attempts} attempt(s)).`)
  }
}
