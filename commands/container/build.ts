import type {BuildResult} from '../../src/docker/build.js'
import {ContainerCommand, containerFlags} from '../../src/client/container/container-command.js'

export default class ContainerBuild extends ContainerCommand {
  static override summary = "Build one of your images on the blade: ie-docker build's arguments after --."
  static override description = `Everything after -- goes to ie-docker build on the blade, which checks it (see docs/ie-docker.md).
The context is a folder on the blade, inside your storage folder there (push it with git or sftp first);
a relative folder is taken from your home on the blade. FROM and COPY --from may name the images
offered on the blade (shien container images) and your own.`
  static override examples = ['<%= config.bin %> container build -- -t myimg /gfs2/shien/users/e195701/repo']
  static override strict = false
  static override flags = containerFlags

  async run(): Promise<BuildResult> {
    const {flags, argv} = await this.parse(ContainerBuild)
    // The engine's steps, as the blade prints them, go to stderr; with --json stdout stays one object.
    const result = await this.ieDocker<BuildResult>(flags, ['build', ...(argv as string[])], (line) => process.stderr.write(`${line}\n`))
    if (!this.jsonEnabled()) this.log(`${result.name}: built as ${result.image} (${result.id.slice(0, 12)})`)
    return result
  }
}
