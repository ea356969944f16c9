import {EventEmitter} from 'node:events'

import {describe, expect, it} from 'vitest'

import {BladeClient} from '../../../src/client/blade-client.js'
import {ShienError} from '../../../src/errors.js'
import type {Connection} from '../../../src/transport/connect.js'

/** An ssh2 channel stand-in for `shien blade lock`: what it was sent, and whether its stdin ended. */
class LockChannel extends EventEmitter {
  stderr = new EventEmitter()
  ended = false
  write() {}
  signal() {}
  close() {}
  end() {
    this.ended = true
    // The blade's lock step ends when its stdin does, with its result.
    setImmediate(() => {
      this.emit('data', Buffer.from('{"slot":"01","startedAt":"x","heldMs":5}'))
      this.emit('close', 0)
    })
  }
}

function blade(answer: (channel: LockChannel) => void): {client: BladeClient; channels: LockChannel[]} {
  const channels: LockChannel[] = []
  const client = {
    exec(_command: string, callback: (error: Error | undefined, channel: LockChannel) => void) {
      const channel = new LockChannel()
      channels.push(channel)
      callback(undefined, channel)
      setImmediate(() => answer(channel))
    },
  }
  const connection = {client, target: {}, publicKey: '', hostKeyFingerprint: '', close() {}} as unknown as Connection
  return {client: new BladeClient(connection), channels}
}

const holder = {slot: '01', startedAt: '2026-12-06T10:02:13.000Z', host: 'mbp', pid: 42}

describe('the laptop\'s hold on a slot\'s push lock', () => {
  it('holds once the blade says `locked`, keeps the step\'s stdin open, and ends it on release', async () => {
    const {client, channels} = blade((c) => c.stderr.emit('data', Buffer.from(`@shien ${JSON.stringify({type: 'locked', holder})}\n`)))
    const lock = await client.lockSlot('01', 'mbp')
    expect(lock.holder).toEqual(holder)
    expect(channels[0].ended).toBe(false)
    await lock.release()
    expect(channels[0].ended).toBe(true)
  })

  it('is refused with the blade\'s SLOT_BUSY, exit 6, when another push holds the slot', async () => {
    const busy = {error: {code: 'SLOT_BUSY', message: 'Slot 01 is busy: another push to it started 2026-12-06 10:02:13 UTC from the laptop "mbp" is still running.', exitCode: 6, suggestions: []}}
    const {client} = blade((c) => {
      c.emit('data', Buffer.from(JSON.stringify(busy)))
      c.emit('close', 6)
    })
    const error = await client.lockSlot('01', 'other').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ShienError)
    expect(error).toMatchObject({code: 'SLOT_BUSY', exitCode: 6, message: expect.stringContaining('from the laptop "mbp"')})
  })
})

describe('the laptop\'s hold when the connection goes under it', () => {
  it('lets nothing go unhandled, and release still returns', async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    try {
      const {client, channels} = blade((c) => c.stderr.emit('data', Buffer.from(`@shien ${JSON.stringify({type: 'locked', holder})}\n`)))
      const lock = await client.lockSlot('01', 'mbp')
      // The connection goes: the channel closes with no exit status.
      channels[0].emit('close')
      await new Promise((f) => setTimeout(f, 50))
      await lock.release()
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })
})
