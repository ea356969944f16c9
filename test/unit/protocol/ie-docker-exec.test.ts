import {describe, expect, it} from 'vitest'

import {parseDockerInvocation} from '../../../src/docker/cli.js'
import {parseExecArgs, parseLogsArgs} from '../../../src/protocol/ie-docker-exec.js'

describe('parseExecArgs', () => {
  it('parses docker-style flags, then NAME, then the command untouched', () => {
    expect(parseExecArgs(['-it', '-e', 'A=1', '--env=B=2', '-w', '/srv', 'web', 'sh', '-c', 'ls --privileged'])).toEqual({
      name: 'web', command: ['sh', '-c', 'ls --privileged'], interactive: true, tty: true, env: ['A=1', 'B=2'], workdir: '/srv',
    })
    expect(parseExecArgs(['web', 'id'])).toEqual({name: 'web', command: ['id'], interactive: false, tty: false, env: []})
    expect(parseExecArgs(['-t', '--interactive', 'web', 'id'])).toMatchObject({interactive: true, tty: true})
  })

  it.each([
    [['--privileged'], /every capability/],
    [['-u', '0'], /runs as the container does/],
    [['--user=root'], /runs as the container does/],
    [['--env-file', '/etc/shadow'], /read on the blade with root privileges/],
    [['--preserve-fds', '3'], /descriptors/],
    [['--detach-keys', 'x'], /accepts only the flags/],
  ])('refuses %j before NAME, naming it', (flag, why) => {
    const error = (() => {
      try {
        parseExecArgs([...flag, 'web', 'id'])
      } catch (error) {
        return error
      }
    })()
    expect(error).toMatchObject({code: 'FLAG_REFUSED', exitCode: 6, message: expect.stringMatching(new RegExp(`^${flag[0].split('=')[0]} is not allowed: `))})
    expect((error as Error).message).toMatch(why)
  })

  it('needs a NAME and a command, and values for -e and -w', () => {
    expect(() => parseExecArgs(['-it'])).toThrow(/needs a container NAME/)
    expect(() => parseExecArgs(['web'])).toThrow(/exec web needs a COMMAND/)
    expect(() => parseExecArgs(['-e'])).toThrow(/-e needs a value/)
    expect(() => parseExecArgs(['-w', '/a', '-w', '/b', 'web', 'id'])).toThrow(/given twice/)
    expect(() => parseExecArgs(['-i=1', 'web', 'id'])).toThrow(expect.objectContaining({code: 'FLAG_REFUSED'}))
  })
})

describe('parseLogsArgs', () => {
  it('parses -f, -n, -t and one NAME in any order', () => {
    expect(parseLogsArgs(['web'])).toEqual({name: 'web', follow: false, timestamps: false})
    expect(parseLogsArgs(['-f', 'web', '--tail', '20', '-t'])).toEqual({name: 'web', follow: true, timestamps: true, tail: 20})
    expect(parseLogsArgs(['--tail=0', 'web'])).toMatchObject({tail: 0})
  })

  it('refuses what it does not know, a bad line count, and anything but one NAME', () => {
    expect(() => parseLogsArgs(['--since', '1h', 'web'])).toThrow(expect.objectContaining({code: 'FLAG_REFUSED', message: expect.stringMatching(/^--since is not allowed/)}))
    expect(() => parseLogsArgs(['-n', 'ten', 'web'])).toThrow(/needs a number of lines/)
    expect(() => parseLogsArgs(['-n'])).toThrow(/needs a number of lines/)
    expect(() => parseLogsArgs([])).toThrow(/exactly one container NAME/)
    expect(() => parseLogsArgs(['a', 'b'])).toThrow(/exactly one container NAME/)
  })
})

describe('ie-docker exec and logs command lines', () => {
  it('hands exec everything after the command (--json there is the container\'s), logs --json anywhere', () => {
    expect(parseDockerInvocation(['exec', 'web', 'echo', '--json'])).toMatchObject({command: 'exec', json: false, request: {name: 'web', command: ['echo', '--json']}})
    expect(parseDockerInvocation(['--json', 'exec', 'web', 'id'])).toMatchObject({command: 'exec', json: true})
    expect(parseDockerInvocation(['logs', 'web', '--json'])).toMatchObject({command: 'logs', json: true, request: {name: 'web'}})
    expect(parseDockerInvocation(['--account', 'e195701', 'logs', '-f', 'web'])).toMatchObject({command: 'logs', account: 'e195701', request: {follow: true}})
  })
})
