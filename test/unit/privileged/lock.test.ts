import {mkdtemp, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {withAccountLock} from '../../../src/privileged/lock.js'

const signal = new AbortController().signal

describe('account lock', () => {
  let dir: string
  let lock: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shien-lock-'))
    lock = join(dir, '.lock')
  })
  afterEach(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('is held against other processes while the work runs, and released after', async () => {
    const tryOther = () => execa('flock', ['--nonblock', lock, 'true'], {reject: false})
    const during = await withAccountLock(lock, async () => (await tryOther()).exitCode, {signal})
    expect(during).toBe(1)
    expect((await tryOther()).exitCode).toBe(0)
  })

  it('is released when the work throws', async () => {
    await expect(withAccountLock(lock, async () => Promise.reject(new Error('boom')), {signal})).rejects.toThrow('boom')
    expect((await execa('flock', ['--nonblock', lock, 'true'], {reject: false})).exitCode).toBe(0)
  })

  it('serialises two holders in one process', async () => {
    const events: string[] = []
    const job = (id: string) =>
      withAccountLock(
        lock,
        async () => {
          events.push(`${id}+`)
          await new Promise((r) => setTimeout(r, 150))
          events.push(`${id}-`)
        },
        {signal},
      )
    await Promise.all([job('a'), job('b')])
    expect([
      ['a+', 'a-', 'b+', 'b-'],
      ['b+', 'b-', 'a+', 'a-'],
    ]).toContainEqual(events)
  })

  it('waits for another process and gives up with LOCKED after the wait', async () => {
    const holder = execa('flock', ['--exclusive', '--no-fork', lock, 'sleep', '30'], {reject: false})
    await new Promise((r) => setTimeout(r, 300))
    const started = Date.now()
    await expect(withAccountLock(lock, async () => 'ran', {signal, waitSeconds: 1})).rejects.toMatchObject({code: 'LOCKED'})
    expect(Date.now() - started).toBeGreaterThanOrEqual(900)
    holder.kill()
    await holder
    expect(await withAccountLock(lock, async () => 'ran', {signal})).toBe('ran')
  })

  it('refuses a lock path that is a symlink', async () => {
    await writeFile(join(dir, 'target'), '')
    await symlink(join(dir, 'target'), lock)
    // ie-docker takes the same lock: the message names neither command.
    await expect(withAccountLock(lock, async () => 'ran', {signal})).rejects.toMatchObject({
      code: 'LOCK_SYMLINK',
      message: `${lock} is a symlink; only real files are accepted here.`,
    })
  })
})
