import {ShienError} from '../errors.js'
import type {DockerContext} from './context.js'
import {OWNER_LABEL, checkName, fullName} from './names.js'

/** One of the owner's containers as `ps` shows it. */
export interface ContainerInfo {
  /** The name the owner uses (`web`). */
  name: string
  /** The engine's name (`e195701-web`). */
  container: string
  image: string
  status: string
  ports: {host: number}[]
}

const OWNER_FORMAT = `{{index .Config.Labels "${OWNER_LABEL}"}}|{{.State.Status}}`

/**
 * The owner's container called `raw`, or NO_SUCH_CONTAINER. The name is prefixed with the
 * owner's account, and the container must also carry the owner's label: account `e19` must
 * not reach `e19-5701-web`, which belongs to account `e19-5701`. Someone else's container and
 * a missing one get the same answer, so names of others' containers do not leak.
 */
export async function findOwn(ctx: DockerContext, raw: string): Promise<{container: string; status: string}> {
  const container = fullName(ctx.owner.account, checkName(raw, 'container'))
  const r = await ctx.engine.probe(['container', 'inspect', '--format', OWNER_FORMAT, container], {signal: ctx.signal})
  const [label, status = ''] = r.stdout.trim().split('|')
  if (!r.ok || label !== ctx.owner.account) {
    throw new ShienError(`You have no container "${raw}".`, {
      code: 'NO_SUCH_CONTAINER',
      exit: 'refused',
      suggestions: ['See your containers: ie-docker ps'],
    })
  }
  return {container, status}
}

/** Every container (any account) ie-docker made, by engine name: the port pool's ground truth. */
export async function allManaged(ctx: DockerContext): Promise<Set<string>> {
  const out = await ctx.engine.exec(['ps', '-a', '--filter', `label=${OWNER_LABEL}`, '--format', '{{.Names}}'], {signal: ctx.signal})
  return new Set(out.split('\n').map((l) => l.trim()).filter(Boolean))
}

/** The owner's containers, with the host ports they hold. */
export async function listOwn(ctx: DockerContext): Promise<ContainerInfo[]> {
  const {account} = ctx.owner
  const format = '{{.Names}}\t{{.Image}}\t{{.Status}}'
  const out = await ctx.engine.exec(['ps', '-a', '--filter', `label=${OWNER_LABEL}=${account}`, '--format', format], {signal: ctx.signal})
  const holders = await ctx.ports.holders()
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.split('\t'))
    .filter(([container]) => container.startsWith(`${account}-`))
    .map(([container, image = '', status = '']) => ({
      name: container.slice(account.length + 1),
      container,
      image,
      status,
      ports: holders.filter((h) => h.owner === container).map((h) => ({host: h.port})),
    }))
    .sort((a, b) => a.name.localeCompare(b.name))
}
