import {ShienError} from '../../src/errors.js'
import type {RunResult} from '../../src/docker/run.js'
import {ContainerCommand, containerFlags} from '../../src/client/container/container-command.js'
import {runMode} from '../../src/client/container/run-mode.js'
import {refuseUnknownFlags, splitRunArgv} from '../../src/client/container/docker-argv.js'

export default class ContainerRun extends ContainerCommand {
  static override summary = 'Run a container on the blade, as with docker run: detached (-d) or on this terminal (-it).'
  static override description = `Type it as for docker: docker's flags, then IMAGE, then the command. shien's own flags (--host,
--jump, --accept-new-host-key, --account, --json) may go among docker's; everything else goes to
ie-docker run on the blade, which allows the flags "ie-docker help" lists and names any other it
refuses (see docs/ie-docker.md). -h is help here: give a host name as --hostname.
With -d the container runs in the background and its ports are shown. With -it it runs in a terminal
on the blade connected to this one, and shien exits with the container's exit code.`
  static override examples = [
    '<%= config.bin %> container run -d --name web -p 8080 myimg',
    '<%= config.bin %> container run -it --name sh myimg /bin/sh',
    '<%= config.bin %> container run --host blade -d --name web -v /gfs2/shien/users/e195701/site:/srv:ro nginx',
  ]
  static override strict = false
  static override flags = containerFlags

  async run(): Promise<RunResult | undefined> {
    const split = splitRunArgv(this.argv)
    const {flags} = await this.parse(ContainerRun, split.shien)
    refuseUnknownFlags(split, 'container run')
    const args = split.docker
    if (runMode(args) === 'terminal') {
      if (this.jsonEnabled()) throw new ShienError('--json cannot go with -t: the container talks to your terminal.', {code: 'USAGE', exit: 'usage', suggestions: ['Leave out --json, or run it detached (-d).']})
      const code = await this.onTerminal(flags, ['run', ...args], 'container run -t', ['Or run it in the background: shien container run -d --name NAME IMAGE'])
      if (code !== 0) this.exit(code)
      return undefined
    }
    const result = await this.ieDocker<RunResult>(flags, ['run', ...args])
    if (!this.jsonEnabled()) this.log([`${result.name}: running as ${result.container}`, ...result.ports.map((p) => `  port ${p.container} -> blade port ${p.host}`), ...(result.url ? [`  web: ${result.url}`] : [])].join('\n'))
    return result
  }
}
