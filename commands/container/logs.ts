import {Flags} from '@oclif/core'

import {ShienError} from '../../src/errors.js'
import type {LogsResult} from '../../src/docker/logs.js'
import {ContainerCommand, containerFlags, nameArg} from '../../src/client/container/container-command.js'

export default class ContainerLogs extends ContainerCommand {
  static override summary = "Show what one of your containers has printed, as with docker logs."
  static override description = `Its output so far, as the blade's engine kept it; with -f, then what it prints next, until Ctrl-C.
Under --json the output so far is the result's "output" (-f cannot go with --json).`
  static override examples = ['<%= config.bin %> container logs web', '<%= config.bin %> container logs -f -n 20 web', '<%= config.bin %> container logs web --json']
  static override args = nameArg
  static override flags = {
    ...containerFlags,
    follow: Flags.boolean({char: 'f', description: 'Keep following the output until Ctrl-C.'}),
    tail: Flags.integer({char: 'n', min: 0, description: 'Only the last N lines.'}),
    timestamps: Flags.boolean({char: 't', description: 'Show when each line was printed.'}),
  }

  async run(): Promise<LogsResult | undefined> {
    const {args, flags} = await this.parse(ContainerLogs)
    const words = ['logs', ...(flags.follow ? ['--follow'] : []), ...(flags.timestamps ? ['--timestamps'] : []), ...(flags.tail === undefined ? [] : ['--tail', String(flags.tail)]), args.name]
    if (this.jsonEnabled()) {
      if (flags.follow) throw new ShienError('--follow cannot go with --json: it never ends.', {code: 'USAGE', exit: 'usage', suggestions: ['Leave out -f to get the output so far, or leave out --json to follow it.']})
      return this.ieDocker<LogsResult>(flags, words)
    }
    // The blade reads the end of its stdin as this end going away, so it stays open until done.
    const io = {stdin: 'open' as const, stdout: process.stdout, stderr: process.stderr}
    const code = await this.streamed(flags, words, io).catch((error: unknown) => {
      // Ctrl-C is how -f ends.
      if (flags.follow && this.abort.signal.aborted) return 0
      throw error
    })
    if (code !== 0) this.exit(code)
    return undefined
  }
}
