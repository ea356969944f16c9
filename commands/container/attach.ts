import {ContainerCommand, containerFlags, nameArg} from '../../src/client/container/container-command.js'

export default class ContainerAttach extends ContainerCommand {
  static override summary = "Connect this terminal to one of your running containers on the blade (leave with Ctrl-P Ctrl-Q)."
  static override description = `Runs "sudo ie-docker attach NAME" on the blade in a terminal of its own: what you type goes to the
container's main process (started with -it, e.g. a shell), what it prints comes back. Ctrl-P Ctrl-Q leaves
it running; when the process ends, shien exits with its exit code.`
  static override examples = ['<%= config.bin %> container attach sh']
  static override enableJsonFlag = false
  static override args = nameArg
  static override flags = containerFlags

  async run(): Promise<void> {
    const {args, flags} = await this.parse(ContainerAttach)
    const code = await this.onTerminal(flags, ['attach', args.name], 'container attach')
    if (code !== 0) this.exit(code)
  }
}
