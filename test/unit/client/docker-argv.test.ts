import {describe, expect, it} from 'vitest'

import {refuseUnknownFlags, splitExecArgv, splitRunArgv} from '../../../src/client/container/docker-argv.js'

describe('splitRunArgv (shien container run, typed as for docker)', () => {
  it("takes shien's flags out from among docker's, values included, up to the IMAGE", () => {
    expect(splitRunArgv(['-d', '--host', 'blade', '-p', '8080', '--name', 'web', '--json', '-J', 'gw', 'img', 'sh', '-c', 'x'])).toEqual({
      shien: ['--host', 'blade', '--json', '-J', 'gw'],
      docker: ['-d', '-p', '8080', '--name', 'web', 'img', 'sh', '-c', 'x'],
      unknown: [],
    })
    expect(splitRunArgv(['--host=blade', '--name=web', '-dit', 'img'])).toEqual({shien: ['--host=blade'], docker: ['--name=web', '-dit', 'img'], unknown: []})
  })

  it("leaves everything from the IMAGE on to the container, shien's flag names too", () => {
    expect(splitRunArgv(['-d', 'img', '--host', 'x', '--json'])).toEqual({shien: [], docker: ['-d', 'img', '--host', 'x', '--json'], unknown: []})
  })

  it('reads a flag\'s value as a value, not as the IMAGE, even when it looks like one', () => {
    expect(splitRunArgv(['-e', 'A=1', '-v', '/s/x:/srv', '-w', '/srv', 'img']).docker).toEqual(['-e', 'A=1', '-v', '/s/x:/srv', '-w', '/srv', 'img'])
  })

  it('still takes the old form: shien flags, then -- and docker\'s words', () => {
    expect(splitRunArgv(['--host', 'blade', '--json', '--', '-d', '--name', 'web', 'img'])).toEqual({shien: ['--host', 'blade', '--json'], docker: ['-d', '--name', 'web', 'img'], unknown: []})
  })

  it('tells flags nobody knows from those ie-docker refuses for a reason', () => {
    const split = splitRunArgv(['--frobnicate', '--privileged', '--restart', 'always', 'img'])
    expect(split.unknown).toEqual(['--frobnicate', '--restart'])
    expect(() => refuseUnknownFlags(split, 'container run')).toThrow(expect.objectContaining({code: 'USAGE', exitCode: 2, message: 'Nonexistent flags: --frobnicate, --restart'}))
    expect(() => refuseUnknownFlags(splitRunArgv(['--privileged', '-P', '--mount', 'x', 'img']), 'container run')).not.toThrow()
  })
})

describe('splitExecArgv', () => {
  it('splits up to the container NAME', () => {
    expect(splitExecArgv(['-it', '--host', 'blade', '-e', 'A=1', 'web', 'sh', '-c', '--json'])).toEqual({
      shien: ['--host', 'blade'], docker: ['-it', '-e', 'A=1', 'web', 'sh', '-c', '--json'], unknown: [],
    })
    expect(splitExecArgv(['--user', '0', 'web', 'id']).unknown).toEqual([])
    expect(splitExecArgv(['--detach-keys', 'x', 'web', 'id']).unknown).toEqual(['--detach-keys'])
  })
})
