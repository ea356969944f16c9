import {describe, expect, it} from 'vitest'

import {ExitCode} from '../../../src/errors.js'
import {helpText, parseInvocation, wantsJson} from '../../../src/virsh/cli.js'

describe('ie-virsh command line', () => {
  it('parses the commands of table 2.1 that take a slot', () => {
    expect(parseInvocation(['define', '01'])).toEqual({command: 'define', slot: '01', json: false})
    expect(parseInvocation(['start', '02', '--json'])).toEqual({command: 'start', slot: '02', json: true})
    expect(parseInvocation(['destroy', '03'])).toEqual({command: 'destroy', slot: '03', json: false})
    expect(parseInvocation(['undefine', '04', '--remove-image'])).toEqual({
      command: 'undefine',
      slot: '04',
      removeImage: true,
      json: false,
    })
  })

  it('parses console, dumpxml, debug --stop, define --template and an admin\'s --account', () => {
    expect(parseInvocation(['console', '01'])).toEqual({command: 'console', slot: '01', json: false})
    expect(parseInvocation(['dumpxml', '02', '--json'])).toEqual({command: 'dumpxml', slot: '02', json: true})
    expect(parseInvocation(['debug', '03', '--stop'])).toEqual({command: 'debug', slot: '03', stop: true, json: false})
    expect(parseInvocation(['debug', '03'])).toEqual({command: 'debug', slot: '03', stop: false, json: false})
    expect(parseInvocation(['define', '01', '--template', 'kernel'])).toEqual({command: 'define', slot: '01', template: 'kernel', json: false})
    expect(parseInvocation(['list', '--account', 'e195702'])).toEqual({command: 'list', json: false, account: 'e195702'})
    expect(parseInvocation(['templates'])).toEqual({command: 'templates', json: false})
  })

  it('parses the commands without a slot, and shows help when given nothing', () => {
    expect(parseInvocation(['list', '--json'])).toEqual({command: 'list', json: true})
    expect(parseInvocation(['version'])).toEqual({command: 'version', json: false})
    expect(parseInvocation([])).toEqual({command: 'help', json: false})
    expect(parseInvocation(['start', '01', '-h'])).toEqual({command: 'help', json: false})
  })

  it.each([
    [['frobnicate']],
    [['define']],
    [['define', '01', '02']],
    [['list', '01']],
    [['start', '01', '--remove-image']],
    [['version', '--account', 'e195701']],
    [['start', '01', '--stop']],
    [['debug', '01', '--template', 'normal']],
    [['define', '01', '--template']],
    [['templates', 'normal']],
    [['define', '01', '--config=/tmp/evil.json']],
  ])('refuses %j as a usage error (exit 2)', (argv) => {
    expect(() => parseInvocation(argv)).toThrow(expect.objectContaining({code: 'USAGE', exitCode: ExitCode.usage}))
  })

  it('finds --json even on a command line that does not parse, so errors come out as JSON', () => {
    expect(wantsJson(['nope', '--json'])).toBe(true)
    expect(wantsJson(['list'])).toBe(false)
  })

  it('lists every command in the help text', () => {
    for (const word of ['define SLOT', 'start SLOT', 'destroy SLOT', 'undefine SLOT', 'list', 'version', 'dumpxml SLOT', 'console SLOT', 'debug SLOT', 'templates']) {
      expect(helpText()).toContain(word)
    }
  })
})
