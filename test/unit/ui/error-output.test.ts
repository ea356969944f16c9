import {Config, Errors, Flags} from '@oclif/core'
import {captureOutput} from '@oclif/test'
import {beforeAll, describe, expect, it} from 'vitest'

import {ExitCode, ShienError} from '../../../src/errors.js'
import {ShienCommand} from '../../../src/ui/base-command.js'
import {nearest, wantsJson} from '../../../src/ui/error-output.js'
import {ROOT} from '../../support/run-command.js'

let config: Config
beforeAll(async () => {
  config = await Config.load(ROOT)
})

/** A command whose run throws what it is given. */
function throwing(error: unknown) {
  return class Throwing extends ShienCommand {
    static override flags = {channels: Flags.integer({min: 1, max: 8})}
    async run(): Promise<void> {
      await this.parse(Throwing)
      throw error
    }
  }
}

describe('an error no one described, under --json', () => {
  it('is the envelope with UNEXPECTED and exit 1, not oclif\'s error object', async () => {
    const {stdout, error} = await captureOutput(() => throwing(new TypeError('cannot read x of undefined')).run(['--json'], config))
    expect(error).toBeInstanceOf(Errors.ExitError)
    expect((error as Errors.ExitError).oclif.exit).toBe(ExitCode.failure)
    expect(JSON.parse(stdout)).toEqual({error: {code: 'UNEXPECTED', message: 'cannot read x of undefined', exitCode: 1, suggestions: ['Run it again with DEBUG=* for details, and report it if it persists.']}})
  })

  it('goes to oclif unchanged without --json', async () => {
    const thrown = new TypeError('cannot read x of undefined')
    const {stdout, error} = await captureOutput(() => throwing(thrown).run([], config))
    expect(error).toBe(thrown)
    expect(stdout).toBe('')
  })
})

describe('a shien error', () => {
  it('keeps its code and exit code, with "Error (CODE)" and "Try this:" on stderr', async () => {
    const thrown = new ShienError('Slot 03 holds a VM.', {code: 'SLOT_DEFINED', exit: 'refused', suggestions: ['Add --replace.']})
    const {stdout, stderr, error} = await captureOutput(() => throwing(thrown).run([], config))
    expect((error as Errors.ExitError).oclif.exit).toBe(ExitCode.refused)
    expect(stdout).toBe('')
    expect(stderr).toBe('Error (SLOT_DEFINED): Slot 03 holds a VM.\nTry this:\n  Add --replace.\n')
  })

  it('reads --json from the words when parsing failed before --json was read', async () => {
    const {stdout, error} = await captureOutput(() => throwing(new Error('not reached')).run(['--channels', '9', '--json'], config))
    expect((error as Errors.ExitError).oclif.exit).toBe(ExitCode.usage)
    expect(JSON.parse(stdout).error).toMatchObject({code: 'USAGE', message: expect.stringContaining('less than or equal to 8')})
  })
})

describe('wantsJson and nearest', () => {
  it('takes --json before a "--" only', () => {
    expect(wantsJson(['push', '--json'])).toBe(true)
    expect(wantsJson(['container', 'run', 'x', '--', '--json'])).toBe(false)
    expect(wantsJson(['push', '--jsonx'])).toBe(false)
  })

  it('names a candidate only when it is near enough to be a typo', () => {
    expect(nearest('--chanels', ['--channels', '--slot'])).toBe('--channels')
    expect(nearest('--frobnicate', ['--channels', '--slot', '--name'])).toBeUndefined()
    expect(nearest('vm:lst', ['vm:list', 'push'])).toBe('vm:list')
    expect(nearest('x', [])).toBeUndefined()
  })
})
