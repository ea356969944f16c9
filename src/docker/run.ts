import {ShienError} from '../errors.js'
import {withAccountLock} from '../privileged/lock.js'
import type {DockerContext} from './context.js'
import {resolveImage} from './images.js'
import {OWNER_LABEL, checkName, fullName} from './names.js'
import {listOwn} from './own.js'
import {resourceArgs, userArgs} from './policy.js'
import {changePorts, takePorts} from './published.js'
import type {RunRequest} from '../protocol/ie-docker-run.js'
import {volumeArgs} from './volumes.js'

/** What `run` did: the container, the host ports it got, and its address behind the proxy. */
export interface RunResult {
  name: string
  container: string
  image: string
  /** The engine's container id (detached runs), or undefined for a run on the terminal. */
  id?: string
  ports: {container: number; host: number}[]
  url?: string
  /** The engine's exit code for a run on the terminal. */
  exitCode?: number
}

/**
 * Runs a container for the owner. Every rule is checked before anything changes: image, name,
 * memory and CPUs, user, volumes, then (under the account lock) the container limit and the
 * name; host ports come from the pool, and a run the engine refuses gives them back.
 */
export async function runContainer(ctx: DockerContext, req: RunRequest): Promise<RunResult> {
  const name = checkName(req.name ?? `c${Math.floor(Math.random() * 0xfffffff).toString(16)}`, 'container')
  const container = fullName(ctx.owner.account, name)
  const image = await resolveImage(ctx, req.image)
  const args = [
    ...resourceArgs(req, ctx.limits),
    ...userArgs(req, ctx.owner),
    ...(await volumeArgs(req.volumes, {home: ctx.home, owner: ctx.owner, signal: ctx.signal})),
    ...req.env.flatMap((e) => ['--env', e]),
    ...optional('--workdir', req.workdir),
    ...optional('--hostname', req.hostname),
    ...optional('--entrypoint', req.entrypoint),
  ]
  const exposed = [...new Set([...req.ports, ...(await exposedPorts(ctx, image))])].sort((a, b) => a - b)
  if (exposed.length > ctx.limits.portsPerContainer) {
    throw portLimit(`This container would publish ${exposed.length} ports (${exposed.join(', ')}), more than your limit of ${ctx.limits.portsPerContainer} per container.`, req.ports.length > 0)
  }
  const created = await withAccountLock(ctx.lockPath, async () => {
    await checkRoom(ctx, name, exposed.length)
    return changePorts(ctx, async () => {
      const ports = await takePorts(ctx, container, exposed)
      const publish = ports.flatMap((p) => ['--publish', `${ctx.settings.listenAddress}:${p.host}:${p.container}/tcp`])
      try {
        const id = (await ctx.engine.exec([...createArgs(ctx, req, container), ...args, ...publish, image, ...req.command], {signal: ctx.signal})).trim()
        return {id, ports}
      } catch (error) {
        await undo(ctx, container)
        throw error
      }
    })
  }, {signal: ctx.signal})
  const result = {name, container, image, ...created, url: created.ports.length > 0 ? `http://${container}.${ctx.settings.proxy.domain}/` : undefined}
  // Started outside the locks: an interactive session may last hours.
  return {...result, ...(await start(ctx, req, container))}
}

/** Removes a container that could not be made or started, and gives its ports back. */
async function undo(ctx: DockerContext, container: string): Promise<void> {
  await ctx.engine.probe(['rm', '--force', container], {signal: ctx.signal})
  await ctx.ports.release(container)
}

function createArgs(ctx: DockerContext, req: RunRequest, container: string): string[] {
  const switches = [...(req.remove ? ['--rm'] : []), ...(req.interactive ? ['--interactive'] : []), ...(req.tty ? ['--tty'] : [])]
  // no-new-privileges: setuid programs in the image cannot raise a process above its user.
  return ['create', '--name', container, '--label', `${OWNER_LABEL}=${ctx.owner.account}`, '--security-opt', 'no-new-privileges', ...switches, ...ctx.settings.runArgs]
}

async function start(ctx: DockerContext, req: RunRequest, container: string): Promise<{exitCode?: number}> {
  if (!req.detach) return {exitCode: await ctx.engine.attached(['start', '--attach', ...(req.interactive ? ['--interactive'] : []), container], {signal: ctx.signal})}
  try {
    await ctx.engine.exec(['start', container], {signal: ctx.signal})
    return {}
  } catch (error) {
    await changePorts(ctx, () => undo(ctx, container))
    throw error
  }
}

const optional = (flag: string, value: string | undefined) => (value === undefined ? [] : [flag, value])

/** The TCP ports the image declares (EXPOSE). */
async function exposedPorts(ctx: DockerContext, image: string): Promise<number[]> {
  const out = await ctx.engine.exec(['image', 'inspect', '--format', '{{json .Config.ExposedPorts}}', image], {signal: ctx.signal})
  const parsed = JSON.parse(out.trim() || 'null') as Record<string, unknown> | null
  return Object.keys(parsed ?? {}).map((k) => /^([0-9]+)\/tcp$/.exec(k)).filter((m) => m !== null).map((m) => Number(m[1]))
}

/** The container and port limits and the name, checked under the account lock so two runs cannot both pass. */
async function checkRoom(ctx: DockerContext, name: string, ports: number): Promise<void> {
  const own = await listOwn(ctx)
  const held = own.reduce((n, c) => n + c.ports.length, 0)
  if (held + ports > ctx.limits.portsPerAccount) {
    throw portLimit(`Your containers hold ${held} host ports; ${ports} more would pass your limit of ${ctx.limits.portsPerAccount}.`, false)
  }
  if (own.some((c) => c.name === name)) {
    throw new ShienError(`You already have a container "${name}".`, {code: 'NAME_IN_USE', exit: 'refused', suggestions: [`Remove it first (ie-docker rm ${name}) or pick another --name.`]})
  }
  if (own.length >= ctx.limits.containers) {
    throw new ShienError(`You have ${own.length} containers, your limit is ${ctx.limits.containers}.`, {
      code: 'CONTAINER_LIMIT',
      exit: 'refused',
      suggestions: ['Remove one you no longer need: ie-docker rm NAME'],
    })
  }
}

function portLimit(message: string, named: boolean): ShienError {
  return new ShienError(message, {
    code: 'PORT_LIMIT',
    exit: 'refused',
    suggestions: [
      named ? 'Publish fewer ports (each -p PORT and each port the image EXPOSEs takes one).' : 'Remove a container you no longer need (ie-docker rm NAME), or publish fewer ports.',
      'An admin can raise docker.limits portsPerContainer / portsPerAccount.',
    ],
  })
}
