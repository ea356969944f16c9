import {ShienError} from '../../src/errors.js'
import {ContainerCommand, containerFlags} from '../../src/client/container/container-command.js'
import {refuseUnknownFlags, splitExecArgv} from '../../src/client/container/docker-argv.js'
import {parseExecArgs} from '../../src/protocol/ie-docker-exec.js'

export default class ContainerExec extends ContainerCommand {
  static override summary = 'Run a command in one of your running containers, as with docker exec.'
  static override description = `Type it as for docker: -i (send this terminal's input), -t (a terminal; needs one here), -e KEY=VALUE,
-w PATH, then NAME and the command. The command runs as the container does: as you on the blade.
With -t it runs in a terminal on the blade connected to this one; without, its output comes back as it
is written. shien exits with the command's exit code. shien's own flags (--host, --jump, ...) may go
before NAME. Flags ie-docker does not allow (--privileged, --user, --env-file, ...) are refused by name.`
  static override examples = [
    '<%= config.bin %> container exec -it web /bin/sh',
    '<%= config.bin %> container exec web ls -l /srv',
    'tar c site | <%= config.bin %> container exec -i web tar x -C /srv',
  ]
  static override strict = false
  static override enableJsonFlag = false
  static override flags = containerFlags

  async run(): Promise<void> {
    const split = splitExecArgv(this.argv)
    const {flags} = await this.parse(ContainerExec, split.shien)
    refuseUnknownFlags(split, 'container exec')
    const request = parseExecArgs(split.docker)
    const args = ['exec', ...split.docker]
    const code = request.tty
      ? await this.onTerminal(flags, args, 'container exec -t', ['Or leave out -t: shien container exec NAME COMMAND'])
      : await this.streamed(flags, args, {stdin: request.interactive ? process.stdin : undefined, stdout: process.stdout, stderr: process.stderr})
    if (code !== 0) this.exit(code)
  }
}
