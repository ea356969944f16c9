import {describeAction, type ContainerAction} from '../../docker/lifecycle.js'
import {ContainerCommand, type containerFlags, type nameArg} from './container-command.js'

/**
 * `shien container start|stop|rm NAME`: one ie-docker call on one container, its reply told in
 * one line. A subclass gives its summary, examples, args (nameArg) and flags (containerFlags and
 * its own), and the ie-docker arguments for NAME. This class sets no static properties (the
 * `declare`s only type them): oclif's manifest collects a command's statics up its classes
 * while each class sets some, so statics here, below ContainerCommand which sets none, would
 * cut ShienCommand's --json off the manifest.
 */
export abstract class ContainerActionCommand extends ContainerCommand {
  declare static args: typeof nameArg
  declare static flags: typeof containerFlags

  /** The ie-docker command for this container, e.g. `['stop', 'web']`. */
  protected abstract ieDockerArgs(name: string, flags: Record<string, unknown>): string[]

  async run(): Promise<ContainerAction> {
    // The flags and args of the class that runs: rm adds --force to these.
    const {args, flags} = await this.parse(this.ctor as typeof ContainerActionCommand)
    const result = await this.ieDocker<ContainerAction>(flags, this.ieDockerArgs(args.name, flags))
    if (!this.jsonEnabled()) this.log(describeAction(result))
    return result
  }
}
