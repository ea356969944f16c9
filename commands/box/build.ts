import {Args, Flags} from '@oclif/core'

import {buildBox, type BuildResult} from '../../src/box/build/build.js'
import type {BuildEvent} from '../../src/box/build/run-recipe.js'
import {ShienCommand} from '../../src/ui/base-command.js'

export default class BoxBuild extends ShienCommand {
  static override summary = 'Build a VirtualBox base box from a recipe under boxes/.'

  static override description = `Runs the recipe's build.sh (boxes/README.md): debootstrap, a disk made with libguestfs, a
streamOptimized VMDK, packed as "vagrant package" packs a box. It needs Linux, root, and the
Debian packages the recipe names; what is missing is reported all at once before anything runs
(--check does only that). Each step is printed with the seconds since the start.

The box is written under a hidden name beside --output, checked as "shien box inspect" checks
boxes, and renamed to --output only then. An interrupted or failed build leaves nothing behind.`

  static override examples = [
    {description: 'Build the course base box:', command: 'sudo <%= config.bin %> <%= command.id %> boxes/debian-12 --output debian12.box'},
    {description: 'Build the arm64 box for VirtualBox on Apple Silicon Macs (on an ordinary Linux machine):', command: 'sudo <%= config.bin %> <%= command.id %> boxes/debian-12-arm64 --output debian12-arm64.box'},
    {description: 'Keep downloaded packages for the next build:', command: 'sudo <%= config.bin %> <%= command.id %> boxes/debian-12 --output debian12.box --deb-cache /var/cache/shien-debs'},
    {description: 'Check that this machine can build it:', command: '<%= config.bin %> <%= command.id %> boxes/debian-12 --check'},
  ]

  static override args = {
    recipe: Args.string({required: true, description: 'Recipe folder, e.g. boxes/debian-12.'}),
  }

  static override flags = {
    output: Flags.string({char: 'o', description: 'Where to write the box. [default: <recipe name>.box]'}),
    gzip: Flags.boolean({description: 'Compress the box (tar.gz).'}),
    'deb-cache': Flags.string({description: 'Folder to keep downloaded .deb files in between builds.'}),
    force: Flags.boolean({description: 'Replace --output if it exists.'}),
    check: Flags.boolean({description: 'Only check that this machine can build the recipe.'}),
  }

  async run(): Promise<BuildResult> {
    const {args, flags} = await this.parse(BoxBuild)
    const result = await buildBox(
      {recipe: args.recipe, output: flags.output, gzip: flags.gzip, debCache: flags['deb-cache'], force: flags.force, checkOnly: flags.check, cwd: process.cwd()},
      {signal: this.abort.signal, onEvent: this.jsonEnabled() ? undefined : render},
    )
    if (!this.jsonEnabled()) {
      this.log(result.output
        ? `Built ${result.output} in ${result.seconds} s (${result.architecture ?? 'architecture not declared'}, ${result.firmware?.toUpperCase() ?? 'firmware not declared'}, ${result.bytes} bytes, sha256 ${result.sha256}).`
        : `This machine can build ${result.recipe}.`)
    }
    return result
  }
}

/** Steps as the recipe numbers them; its other output indented, so a failure reads in place. */
function render(event: BuildEvent): void {
  process.stderr.write(event.type === 'step' ? `[${String(event.seconds).padStart(4)}s] ${event.message}\n` : `        ${event.line}\n`)
}
