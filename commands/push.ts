import {Args, Flags} from '@oclif/core'

import {planPush} from '../src/push/plan.js'
import {push, type PushResult} from '../src/push/push.js'
import {ShienCommand} from '../src/ui/base-command.js'
import {bladeAccess, jumpFlag} from '../src/ui/host-key-prompt.js'
import {createRenderer} from '../src/ui/renderer.js'

export default class Push extends ShienCommand {
  static override summary = 'Send a Vagrant box to the blade and run it there as a hardened VM.'

  static override description = `Packages the VM of the Vagrant project in the current folder (or takes the .box you name),
uploads it over SSH into your directory on the blade (resumable: run the same command again after
an interruption), converts it to qcow2, removes Vagrant's default credentials and installs your own
SSH key, then defines and starts it as <account>-<slot> through ie-virsh.

When the project's VM was made from a course base box that the blade has (Vagrant's record
in .vagrant/machines/, the base of .shien.json, or --base), only the disk blocks that differ
from the base are sent and the VM lives on the blade as a thin overlay of it; otherwise the
whole box goes, with one line saying why. --full always sends the whole box.

The packaged box (and the delta made from it) stays in .vagrant/shien/ until the push
succeeds, so running the same command again after a failure does not package the VM again;
--repackage does.

The blade comes from --host, .shien.json (written by shien init), or SHIEN_HOST; how to reach it
comes from ~/.ssh/config (HostName, Port, User, IdentityFile) and ssh-agent, and its host key
from ~/.ssh/known_hosts.

When that blade is one of several sharing the storage (a cluster), the VM goes to the blade that
can take it (runs its architecture natively, has the memory, is not drained) and runs the fewest
VMs, or to --blade's; a slot already on a blade stays there. One line on stderr says where, and
why the others were passed over (placement in --json).`

  static override examples = [
    {description: 'In a Vagrant project set up with shien init:', command: '<%= config.bin %> push'},
    {description: 'An existing box into slot 02 of blade1:', command: '<%= config.bin %> push os101.box --host blade1 --slot 02'},
    {description: 'Replace the VM in slot 01:', command: '<%= config.bin %> push --replace'},
    {description: 'A box file made from a course base box, as a delta against it:', command: '<%= config.bin %> push web.box --base os101/debian12@2026.1.0'},
    {description: 'Package the VM again rather than reuse the box kept from a failed push:', command: '<%= config.bin %> push --repackage'},
    {description: 'On blade2 of the cluster rather than where placement would put it:', command: '<%= config.bin %> push --blade blade2'},
  ]

  static override args = {
    box: Args.string({description: 'A .box file; without it, `vagrant package` runs in the current folder.'}),
  }

  static override flags = {
    host: Flags.string({char: 'H', description: 'Blade to push to: a Host from ~/.ssh/config, HOST, USER@HOST or HOST:PORT.'}),
    jump: jumpFlag,
    slot: Flags.string({char: 's', description: 'VM slot on the blade, 01 to your limit (04 by default). [default: 01]'}),
    name: Flags.string({description: 'Name of the box on the blade (default: the file or project name).'}),
    replace: Flags.boolean({description: 'Replace the VM already in the slot (kept until the new one runs).'}),
    'public-key': Flags.string({description: 'Public key to install for vagrant (default: the key you log in to the blade with).'}),
    'accept-new-host-key': Flags.boolean({description: 'Trust an unknown blade host key without asking (for scripts; a changed key is still refused).'}),
    base: Flags.string({description: 'Course base box the VM was made from, ORG/NAME@VERSION (default: .shien.json, else what Vagrant recorded).'}),
    full: Flags.boolean({description: 'Send the whole box, never a delta against a base.'}),
    repackage: Flags.boolean({description: 'Run vagrant package again even if a box kept from a failed push is there.'}),
    start: Flags.boolean({description: 'Start the VM once it is defined (--no-start: define it only; start it later with shien vm start).', default: true, allowNo: true}),
    blade: Flags.string({description: 'Blade of the cluster to put the VM on (default: the one that can take it and runs the fewest VMs).'}),
    'dry-run': Flags.boolean({description: 'Print the plan and stop.'}),
    channels: Flags.integer({description: 'SFTP channels used in parallel for the upload.', default: 3, min: 1, max: 8}),
  }

  async run(): Promise<PushResult | {plan: unknown}> {
    const {args, flags} = await this.parse(Push)
    const plan = planPush({
      box: args.box,
      host: flags.host,
      jump: flags.jump,
      slot: flags.slot,
      name: flags.name,
      replace: flags.replace,
      publicKey: flags['public-key'],
      acceptNewHostKey: flags['accept-new-host-key'],
      base: flags.base,
      full: flags.full,
      repackage: flags.repackage,
      start: flags.start,
      blade: flags.blade,
      cwd: process.cwd(),
      env: process.env,
    })
    if (flags['dry-run']) {
      if (!this.jsonEnabled()) this.log(JSON.stringify(plan, null, 2))
      return {plan}
    }
    const renderer = createRenderer(this.jsonEnabled() ? 'silent' : process.stderr.isTTY ? 'tty' : 'plain')
    try {
      const result = await push(plan, {
        signal: this.abort.signal,
        onEvent: renderer,
        ...bladeAccess(plan.acceptNewHostKey),
        channels: flags.channels,
      })
      if (!this.jsonEnabled()) this.printResult(result)
      return result
    } finally {
      renderer.stop()
    }
  }

  private printResult(result: PushResult): void {
    this.log(`${result.vm} is ${result.state ?? 'defined'} on ${result.placement ? `${result.placement.blade} (${result.host})` : result.host}.`)
    if (result.login) this.log(`Log in with: ${result.login}`)
    if (result.ssh) this.log(`  or with OpenSSH: ${result.ssh}`)
    const keys = result.hostKeys
    if (keys?.recorded) this.log(`Its host keys are in ${keys.path} as ${keys.alias} (${keys.keys} keys${keys.replaced > 0 ? `, ${keys.replaced} old ones replaced` : ''}).`)
    else if (keys) this.warn(`The VM's host keys were not recorded (${keys.reason}). Remove the old ones (ssh-keygen -R ${keys.alias ?? 'ALIAS'}); shien vm ssh ${result.slot} then records them from the blade.`)
    this.log(`Stages: ${result.timings.map((t) => `${t.stage} ${(t.ms / 1000).toFixed(1)} s`).join(', ')}`)
  }
}
