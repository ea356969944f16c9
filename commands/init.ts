import {Flags} from '@oclif/core'

import {checkBoxNameForPlan} from '../src/push/plan.js'
import {initProject, type InitResult} from '../src/push/vagrant-init.js'
import {ShienCommand} from '../src/ui/base-command.js'

export default class Init extends ShienCommand {
  static override summary = 'Set up a Vagrant project for shien push (and vagrant push shien).'

  static override description = `Writes .shien.json with the blade, slot and box name, and adds a push stanza to the
Vagrantfile so that "vagrant push shien" runs "shien push".`

  static override examples = ['<%= config.bin %> init --host blade1', '<%= config.bin %> init --host e195701@blade1 --slot 02']

  static override flags = {
    host: Flags.string({char: 'H', required: true, description: 'Blade: a Host from ~/.ssh/config, HOST, USER@HOST or HOST:PORT.'}),
    slot: Flags.string({char: 's', default: '01', description: 'VM slot on the blade.'}),
    name: Flags.string({description: 'Name of the box on the blade (default: the folder name).'}),
    box: Flags.string({description: 'A .box file to push instead of running vagrant package (e.g. one packer builds).'}),
    force: Flags.boolean({description: 'Overwrite an existing .shien.json.'}),
  }

  async run(): Promise<InitResult> {
    const {flags} = await this.parse(Init)
    const slot = /^[0-9]$/.test(flags.slot) ? `0${flags.slot}` : flags.slot
    const result = await initProject(process.cwd(), {host: flags.host, slot, name: checkBoxNameForPlan(flags.name), box: flags.box}, flags.force)
    if (!this.jsonEnabled()) {
      this.log(`Wrote ${result.projectFile}.`)
      if (result.stanzaAdded) this.log(`Added the shien push stanza to ${result.vagrantfile}: run "vagrant push shien" or "shien push".`)
      else if (!result.vagrantfile) this.log('No Vagrantfile here: shien push will need a .box file.')
    }
    return result
  }
}
