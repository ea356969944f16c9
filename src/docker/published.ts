import {withPoolLock} from '../privileged/lock.js'
import type {DockerContext} from './context.js'
import {allManaged} from './own.js'
import {renderProxy, writeProxy} from './proxy.js'

/**
 * Changes the container port pool while holding its lock, then rebuilds the proxy file from
 * it. Before `change`, ports of this blade's containers that no longer exist go back to the
 * pool: a container run with --rm, or removed behind ie-docker's back, leaves no port behind.
 */
export async function changePorts<T>(ctx: DockerContext, change: () => Promise<T>): Promise<T> {
  return withPoolLock(
    ctx.poolLockPath,
    async () => {
      const alive = await allManaged(ctx)
      await ctx.ports.reclaim((container) => alive.has(container))
      try {
        return await change()
      } finally {
        const text = renderProxy(await ctx.ports.holders(), ctx.hostname, ctx.settings)
        await writeProxy(text, ctx.settings, {signal: ctx.signal})
      }
    },
    {signal: ctx.signal},
  )
}

/** Takes one host port per container port for `container`; all or none. */
export async function takePorts(ctx: DockerContext, container: string, containerPorts: readonly number[]): Promise<{container: number; host: number}[]> {
  const taken: {container: number; host: number}[] = []
  try {
    for (const port of containerPorts) taken.push({container: port, host: await ctx.ports.allocate(container)})
  } catch (error) {
    await ctx.ports.release(container)
    throw error
  }
  return taken
}
