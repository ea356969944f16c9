import pRetry from 'p-retry'

import {ShienError} from '../errors.js'
import {withAccountLock} from '../privileged/lock.js'
import type {ExecRequest} from '../protocol/ie-docker-exec.js'
import type {DockerContext} from './context.js'
import {findOwn, listOwn, type ContainerInfo} from './own.js'
import {changePorts} from './published.js'
import {checkMountsAtStart} from './volumes.js'
import {renderTable} from '../text-table.js'

export interface ContainerAction {
  name: string
  container: string
  action: 'started' | 'stopped' | 'removed'
  /** Host ports returned to the pool (rm). */
  freedPorts?: number[]
}

/** Seconds a container gets to stop before it is killed (servers that ignore SIGTERM). */
const STOP_SECONDS = '3'

export async function psContainers(ctx: DockerContext): Promise<{containers: ContainerInfo[]}> {
  return {containers: await listOwn(ctx)}
}

interface Inspected {
  Mounts?: {Type?: string; Source?: string}[]
  HostConfig?: {IDMappings?: {UidMap?: string[]; GidMap?: string[]} | null}
}

/**
 * Starts a stopped container, once it is checked again: it runs in the owner's user namespace
 * (policy.ts; a container made before that rule would run as root on the blade), and the
 * folders it mounts are still the owner's (volumes.ts).
 */
export async function startContainer(ctx: DockerContext, raw: string): Promise<ContainerAction> {
  const {container} = await findOwn(ctx, raw)
  const [inspected] = JSON.parse(await ctx.engine.exec(['container', 'inspect', container], {signal: ctx.signal})) as Inspected[]
  const maps = inspected?.HostConfig?.IDMappings
  if (JSON.stringify([maps?.UidMap, maps?.GidMap]) !== JSON.stringify([[`0:${ctx.owner.uid}:1`], [`0:${ctx.owner.gid}:1`]])) {
    throw new ShienError(`Container "${raw}" was made without your own user namespace (before this blade's rules) and would run as root on the blade.`, {
      code: 'CONTAINER_OUTDATED',
      exit: 'refused',
      suggestions: [`Remove it and make it again: ie-docker rm ${raw}, then ie-docker run ... --name ${raw} IMAGE`],
    })
  }
  await checkMountsAtStart(raw, inspected?.Mounts ?? [], {home: ctx.home, owner: ctx.owner, signal: ctx.signal})
  await ctx.engine.exec(['start', container], {signal: ctx.signal})
  return {name: raw, container, action: 'started'}
}

export async function stopContainer(ctx: DockerContext, raw: string): Promise<ContainerAction> {
  const {container} = await findOwn(ctx, raw)
  await ctx.engine.exec(['stop', '--time', STOP_SECONDS, container], {signal: ctx.signal})
  return {name: raw, container, action: 'stopped'}
}

/** Removes a container (`force`: a running one too) and returns its ports to the pool. */
export async function removeContainer(ctx: DockerContext, raw: string, o: {force: boolean}): Promise<ContainerAction> {
  return withAccountLock(ctx.lockPath, async () => {
    const {container, status} = await findOwn(ctx, raw)
    if (status === 'running' && !o.force) {
      throw new ShienError(`Container "${raw}" is running.`, {code: 'CONTAINER_RUNNING', exit: 'refused', suggestions: [`Stop it first (ie-docker stop ${raw}), or use ie-docker rm -f ${raw}.`]})
    }
    if (status === 'running') await ctx.engine.exec(['stop', '--time', STOP_SECONDS, container], {signal: ctx.signal})
    // Removed under the pool's lock, or the stale-port sweep would take its ports first.
    const freedPorts = await changePorts(ctx, async () => {
      await removeStopped(ctx, container)
      return ctx.ports.release(container)
    })
    return {name: raw, container, action: 'removed', freedPorts}
  }, {signal: ctx.signal})
}

/**
 * `rm` of a stopped container. podman 4.3 sometimes reports a container in a user namespace
 * as not removed ("userdata/shm: device or resource busy") while its cleanup after `stop` is
 * still running, and removes it all the same (measured: 2 of 6 runs): so a failed rm counts as
 * done when the container is gone, and is tried again while it is not.
 */
async function removeStopped(ctx: DockerContext, container: string): Promise<void> {
  await pRetry(
    async () => {
      try {
        await ctx.engine.exec(['rm', container], {signal: ctx.signal})
      } catch (error) {
        if ((await ctx.engine.probe(['container', 'exists', container], {signal: ctx.signal})).ok) throw error
      }
    },
    // Five tries in about three seconds (waits of 0.2, 0.4, 0.8 and 1.6 s).
    {retries: 4, minTimeout: 200, factor: 2, randomize: false, signal: ctx.signal},
  )
}

/** Connects this terminal to a running container's main process. */
export async function attachContainer(ctx: DockerContext, raw: string): Promise<{name: string; container: string; exitCode: number}> {
  const {container, status} = await findOwn(ctx, raw)
  if (status !== 'running') {
    throw new ShienError(`Container "${raw}" is not running (${status}).`, {code: 'NOT_RUNNING', exit: 'refused', suggestions: [`Start it first: ie-docker start ${raw}`]})
  }
  const attached = await ctx.engine.attached(['attach', container], {signal: ctx.signal})
  return {name: raw, container, exitCode: attached === 0 ? await exitCodeOf(ctx, container) : attached}
}

/**
 * Runs a command in one of the owner's running containers, on this terminal: in the
 * container's namespaces, its user namespace included, so the process is the owner on the blade
 * as the container's main process is. Only exec's allow-listed flags get here (parseExecArgs).
 */
export async function execInContainer(ctx: DockerContext, req: ExecRequest): Promise<{name: string; container: string; exitCode: number}> {
  const {container, status} = await findOwn(ctx, req.name)
  if (status !== 'running') {
    throw new ShienError(`Container "${req.name}" is not running (${status}).`, {code: 'NOT_RUNNING', exit: 'refused', suggestions: [`Start it first: ie-docker start ${req.name}`]})
  }
  const flags = [
    ...(req.interactive ? ['--interactive'] : []),
    ...(req.tty ? ['--tty'] : []),
    ...req.env.flatMap((e) => ['--env', e]),
    ...(req.workdir === undefined ? [] : ['--workdir', req.workdir]),
  ]
  const exitCode = await ctx.engine.attached(['exec', ...flags, container, ...req.command], {signal: ctx.signal})
  return {name: req.name, container, exitCode}
}

/**
 * The exit code of a container's main process once attach has returned: podman 4 attach exits
 * 0 whatever the process did (docker gives its code), so it is read back. A container still
 * running was left with the detach keys: 0.
 */
async function exitCodeOf(ctx: DockerContext, container: string): Promise<number> {
  const r = await ctx.engine.probe(['container', 'inspect', '--format', '{{.State.Status}}|{{.State.ExitCode}}', container], {signal: ctx.signal})
  const [status, code] = r.stdout.trim().split('|')
  return r.ok && (status === 'exited' || status === 'stopped') ? Number(code) || 0 : 0
}

export function describeAction(r: ContainerAction): string {
  const freed = r.freedPorts && r.freedPorts.length > 0 ? ` (ports ${r.freedPorts.join(', ')} returned)` : ''
  return `${r.name}: ${r.action}${freed}`
}

export function describePs(r: {containers: ContainerInfo[]}): string {
  if (r.containers.length === 0) return 'You have no containers.'
  return renderTable(['NAME', 'IMAGE', 'STATUS', 'PORTS'], r.containers.map((c) => [c.name, c.image, c.status, c.ports.map((p) => p.host).join(',')]))
}
