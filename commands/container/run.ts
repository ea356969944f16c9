import {ShienError} from '../../src/errors.js'
import type {RunResult} from '../../src/docker/run.js'
import {ContainerCommand, containerFlags} from '../../src/client/container/container-command.js'
import {runMode} from '../../src/client/container/run-mode.js'

export default class ContainerRun extends ContainerCommand {
  static override summary = "Run a container on the blade: ie-docker run's arguments after --, detached (-d) or on this terminal (-it)."
  static override description = `Everything after -- goes to ie-docker run on the blade, which checks it (see docs/ie-docker.md).
With -d the container runs in the background and its ports are shown. With -it it runs in a terminal
on the blade connected to this one, and shien exits with the container's exit code.`
  static override examples = ['<%= config.bin %> container run -- -d --name web -p 8080 myimg', '<%= config.bin %> container run -- -it --name sh myimg /bin/sh']
  static override strict = false
  static override flags = containerFlags

  async run(): Promise<RunResult | undefined> {
    const {flags, argv} = await this.parse(ContainerRun)
    const args = argv as string[]
    if (runMode(args) === 'terminal') {
      if (this.jsonEnabled()) throw new ShienError('--json cannot go with -t: the container talks to your terminal.', {code: 'USAGE', exit: 'usage', suggestions: ['Leave out --json, or run it detached (-d).']})
      const code = await this.onTerminal(flags, ['run', ...args], 'container run -t', ['Or run it in the background: shien container run -- -d --name NAME IMAGE'])
      if (code !== 0) this.exit(code)
      return undefined
    }
    const result = await this.ieDocker<RunResult>(flags, ['run', ...args])
    if (!this.jsonEnabled()) this.log([`${result.name}: running as ${result.container}`, ...result.ports.map((p) => `  port ${p.container} -> blade port ${p.host}`), ...(result.url ? [`  web: ${result.url}`] : [])].join('\n'))
    return result
  }
}
