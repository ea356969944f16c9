import {EventEmitter} from 'node:events'

import {describe, expect, it} from 'vitest'

import {BladeClient} from '../../../src/client/blade-client.js'
import {ShienError} from '../../../src/errors.js'
import {packageInfo} from '../../../src/package-info.js'
import {BLADE_PROTOCOL} from '../../../src/protocol/blade-steps.js'
import type {Connection} from '../../../src/transport/connect.js'

/** An ssh2 client stand-in whose every command answers `reply` on stdout and exits 0. */
function bladeAnswering(reply: unknown): {connection: Connection; commands: string[]} {
  const commands: string[] = []
  const client = {
    exec(command: string, callback: (error: Error | undefined, channel: EventEmitter) => void) {
      commands.push(command)
      const channel = Object.assign(new EventEmitter(), {stderr: new EventEmitter(), signal() {}, write() {}, end() {}})
      callback(undefined, channel)
      setImmediate(() => {
        channel.emit('data', Buffer.from(JSON.stringify(reply)))
        channel.emit('close', 0)
      })
    },
  }
  return {connection: {client, target: {}, publicKey: '', hostKeyFingerprint: '', close() {}} as unknown as Connection, commands}
}

describe('a blade of another protocol, seen from the laptop', () => {
  it('VERSION_MISMATCH names both versions and the npm and Homebrew commands that install the blade\'s', async () => {
    const {connection, commands} = bladeAnswering({version: '0.7.2', protocol: BLADE_PROTOCOL + 1, account: 'e195701', home: '/home/e195701'})
    const error = await new BladeClient(connection).hello().catch((e: unknown) => e)
    expect(commands[0]).toContain('blade hello')
    expect(error).toBeInstanceOf(ShienError)
    const e = error as ShienError
    expect(e.code).toBe('VERSION_MISMATCH')
    expect(e.message).toContain('The blade runs shien 0.7.2')
    expect(e.message).toContain(`this laptop runs shien ${packageInfo().version}`)
    expect(e.suggestions).toEqual([
      "Install shien 0.7.2, the blade's version, on this laptop: npm install -g @ie-ryukyu/shien@0.7.2",
      'or with Homebrew on a Mac: brew install ie-ryukyu/shien/shien@0.7.2',
      'or ask an admin to update the blade.',
    ])
  })
})
