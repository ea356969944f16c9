import {describe, expect, it} from 'vitest'

import type {DockerContext} from '../../../src/docker/context.js'
import type {ContainerEngine} from '../../../src/docker/engine.js'
import {attachContainer} from '../../../src/docker/lifecycle.js'
import {runMode} from '../../../src/client/container/run-mode.js'

describe('runMode (shien container run over SSH)', () => {
  it.each([
    [['-d', '--name', 'web', 'img'], 'reply'],
    [['-dit', '--name', 'sh', 'img', '/bin/sh'], 'reply'],
    [['-it', '--name', 'sh', 'img', '/bin/sh'], 'terminal'],
    [['-t', '-i', 'img'], 'terminal'],
    [['--tty', 'img', 'ls', '-d'], 'terminal'],
  ])('%j goes as %s', (args, mode) => {
    expect(runMode(args)).toBe(mode)
  })

  it('refuses here what ie-docker refuses, with its code, before any connection', () => {
    expect(() => runMode(['-it', '--privileged', 'img'])).toThrow(expect.objectContaining({code: 'FLAG_REFUSED', exitCode: 6, message: expect.stringMatching(/^--privileged is not allowed/)}))
    expect(() => runMode(['-it'])).toThrow(expect.objectContaining({code: 'USAGE', message: 'run needs an IMAGE.'}))
  })

  it.each([[['img', 'ls', '-d']], [['-i', 'img', '/bin/sh']]])('says what to add to %j: -d or -it', (args) => {
    expect(() => runMode(args)).toThrow(expect.objectContaining({code: 'USAGE', exitCode: 2, message: expect.stringMatching(/add -d .* or -it/)}))
  })
})

describe('attachContainer', () => {
  /** An engine whose container is running until attach returns `attachCode`, then `after`. */
  function fakeContext(attachCode: number, after: string): {ctx: DockerContext; calls: string[][]} {
    const calls: string[][] = []
    let attached = false
    const engine: Partial<ContainerEngine> = {
      async probe(args) {
        calls.push(args)
        return {ok: true, stdout: args.at(-2)?.startsWith('{{index') ? `e195701|${attached ? after.split('|')[0] : 'running'}\n` : `${after}\n`}
      },
      async attached(args) {
        calls.push(args)
        attached = true
        return attachCode
      },
    }
    return {ctx: {owner: {account: 'e195701'}, engine, signal: new AbortController().signal} as unknown as DockerContext, calls}
  }

  it("gives the exit code of the container's process, which podman attach does not", async () => {
    const {ctx, calls} = fakeContext(0, 'exited|3')
    expect(await attachContainer(ctx, 'sh')).toEqual({name: 'sh', container: 'e195701-sh', exitCode: 3})
    expect(calls[1]).toEqual(['attach', 'e195701-sh'])
  })

  it('gives 0 when the container was left running (detach keys), and the engine code when attach failed', async () => {
    expect((await attachContainer(fakeContext(0, 'running|0').ctx, 'sh')).exitCode).toBe(0)
    expect((await attachContainer(fakeContext(125, 'exited|3').ctx, 'sh')).exitCode).toBe(125)
  })
})
