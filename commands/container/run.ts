import {ShienError} from '../../src/errors.js'
import type {RunResult} from '../../src/docker/run.js'
import {ContainerCommand, containerFlags} from '../../src/docker/remote/container-command.js'

export default class ContainerRun extends ContainerCommand {
  static override summary = "Run a container on the blade: ie-docker run's arguments after --, detached (-d)."
  static override description = 'Everything after -- goes to ie-docker run on the blade, which checks it (see docs/ie-docker.md). Over SSH the container runs detached; for a shell in it, ssh to the blade and run sudo ie-docker run -it there.'
  static override examples = ['<%= config.bin %> container run -- -d --name web -p 8080 myimg']
  static override strict = false
  static override flags = containerFlags

  async run(): Promise<RunResult> {
    const {flags, argv} = await this.parse(ContainerRun)
    const args = argv as string[]
    if (!args.some((a) => a === '-d' || a === '--detach' || /^-[a-z]*d[a-z]*$/.test(a))) {
      throw new ShienError('Over SSH, containers run detached: add -d.', {code: 'USAGE', exit: 'usage', suggestions: ['Example: shien container run -- -d --name web IMAGE']})
    }
    const result = await this.ieDocker<RunResult>(flags, ['run', ...args])
    if (!this.jsonEnabled()) this.log([`${result.name}: running as ${result.container}`, ...result.ports.map((p) => `  port ${p.container} -> blade port ${p.host}`), ...(result.url ? [`  web: ${result.url}`] : [])].join('\n'))
    return result
  }
}
