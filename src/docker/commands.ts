import {buildImage, type BuildResult} from './build.js'
import {DOCKER_COMMANDS, dockerHelpText, type DockerInvocation} from './cli.js'
import {buildDockerContext, type DockerContext, type DockerDeps} from './context.js'
import {describeImages, listImages, removeImage} from './images.js'
import {attachContainer, describeAction, describePs, execInContainer, psContainers, removeContainer, startContainer, stopContainer} from './lifecycle.js'
import {containerLogs} from './logs.js'
import {runContainer, type RunResult} from './run.js'

/** ie-docker's protocol number (`version`): `shien container` checks it; raise it on incompatible changes. */
export const DOCKER_PROTOCOL = 1

/** A command's outcome: the object for --json and the text for people ('' prints nothing). */
export interface DockerOutcome {
  result: object
  text: string
  exitCode?: number
}

export async function runDockerInvocation(inv: DockerInvocation, deps: DockerDeps, signal: AbortSignal): Promise<DockerOutcome> {
  if (inv.command === 'help') return {result: {usage: 'ie-docker <command> [ARGS]', commands: DOCKER_COMMANDS}, text: dockerHelpText()}
  if (inv.command === 'version') {
    const result = {version: deps.pkg.version, protocol: DOCKER_PROTOCOL}
    return {result, text: `ie-docker ${result.version} (protocol ${result.protocol})`}
  }
  return dispatch(inv, await buildDockerContext(deps, signal, inv.account), deps.stderr)
}

async function dispatch(inv: Exclude<DockerInvocation, {command: 'help' | 'version'}>, ctx: DockerContext, progress: (text: string) => void): Promise<DockerOutcome> {
  const out = <T extends object>(result: T, describe: (r: T) => string): DockerOutcome => ({result, text: describe(result)})
  switch (inv.command) {
    case 'run': {
      const r = await runContainer(ctx, inv.request)
      return {result: r, text: describeRun(r), exitCode: r.exitCode || undefined}
    }
    case 'build':
      // The engine's output (each step) goes to stderr as it comes; the result to stdout.
      return out(await buildImage(ctx, inv.request, {cwd: process.cwd(), progress}), describeBuild)
    case 'ps':
      return out(await psContainers(ctx), describePs)
    case 'images':
      return out(await listImages(ctx), describeImages)
    case 'start':
      return out(await startContainer(ctx, inv.name), describeAction)
    case 'stop':
      return out(await stopContainer(ctx, inv.name), describeAction)
    case 'rm':
      return out(await removeContainer(ctx, inv.name, {force: inv.force}), describeAction)
    case 'rmi':
      return out(await removeImage(ctx, inv.image), (r) => `${r.name}: removed`)
    case 'attach': {
      const r = await attachContainer(ctx, inv.name)
      return {result: r, text: '', exitCode: r.exitCode || undefined}
    }
    case 'exec': {
      const r = await execInContainer(ctx, inv.request)
      return {result: r, text: '', exitCode: r.exitCode || undefined}
    }
    case 'logs': {
      const r = await containerLogs(ctx, inv.request, {json: inv.json})
      return {result: r, text: '', exitCode: r.exitCode || undefined}
    }
  }
}

function describeBuild(r: BuildResult): string {
  const skipped = r.skipped.length > 0 ? `\n  left out of the context (not files or folders): ${r.skipped.join(', ')}` : ''
  return `${r.name}: built as ${r.image} (${r.id.slice(0, 12)})${skipped}\n  run it: ie-docker run -d --name NAME ${r.name}`
}

function describeRun(r: RunResult): string {
  if (r.exitCode !== undefined) return ''
  const ports = r.ports.map((p) => `  port ${p.container} -> host port ${p.host}`)
  return [`${r.name}: running as ${r.container}`, ...ports, ...(r.url ? [`  web: ${r.url}`] : [])].join('\n')
}
