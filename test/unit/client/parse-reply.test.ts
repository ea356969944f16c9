import {describe, expect, it} from 'vitest'

import {parseReply} from '../../../src/client/blade-client.js'
import {isShienError, type ShienError} from '../../../src/errors.js'

const virsh = {what: 'ie-virsh start', command: 'ie-virsh'}
const docker = {what: 'ie-docker run', command: 'ie-docker'}

function refusal(run: () => unknown): ShienError {
  try {
    run()
  } catch (error) {
    if (isShienError(error)) return error
    throw error
  }
  throw new Error('no refusal')
}

describe('parseReply: one reader for shien blade, ie-virsh and ie-docker', () => {
  it('returns the result object of a good reply', () => {
    expect(parseReply({stdout: '{"name":"alice-01"}\n', stderr: '', code: 0}, virsh)).toEqual({name: 'alice-01'})
  })

  it("keeps the blade's code, suggestions and its usage, bad-input and refusal exit codes", () => {
    for (const exitCode of [2, 3, 6]) {
      const body = {error: {code: 'QUOTA', message: 'You have 4 VMs.', exitCode, suggestions: ['Undefine one.']}}
      const error = refusal(() => parseReply({stdout: JSON.stringify(body), stderr: '', code: exitCode}, virsh))
      expect(error.code).toBe('QUOTA')
      expect(error.message).toBe('You have 4 VMs. (on the blade, ie-virsh start)')
      expect(error.suggestions).toEqual(['Undefine one.'])
      expect(error.exitCode).toBe(exitCode)
    }
  })

  it('reads a channel closed with neither exit status nor signal as the connection lost (exit 4), not a blade fault', () => {
    const lost = refusal(() => parseReply({stdout: '', stderr: '', code: undefined as unknown as null}, {what: 'shien blade harden', command: 'shien'}))
    expect(lost.code).toBe('CONNECTION_LOST')
    expect(lost.exitCode).toBe(4)
    expect(lost.message).toBe('The connection to the blade was lost during shien blade harden: run the same command to resume.')
    // A step killed by a signal on the blade is the blade's matter.
    const killed = refusal(() => parseReply({stdout: '', stderr: '', code: null, signal: 'KILL'}, virsh))
    expect(killed.code).toBe('REMOTE_FAILED')
  })

  it('reports any other blade failure as a remote one (exit 5)', () => {
    const body = {error: {code: 'LIBVIRT', message: 'boom', exitCode: 1}}
    const error = refusal(() => parseReply({stdout: JSON.stringify(body), stderr: '', code: 1}, virsh))
    expect(error.exitCode).toBe(5)
  })

  it('tells a missing program or sudo rule from a crash, naming what to install', () => {
    const missing = refusal(() => parseReply({stdout: '', stderr: 'bash: ie-docker: command not found\n', code: 127}, docker))
    expect(missing.code).toBe('BLADE_NOT_INSTALLED')
    expect(missing.suggestions?.join(' ')).toContain('docs/ie-docker.md')
    const noRule = refusal(() => parseReply({stdout: '', stderr: 'sudo: a password is required\n', code: 1}, virsh))
    expect(noRule.code).toBe('BLADE_NOT_INSTALLED')
    expect(noRule.suggestions?.join(' ')).toContain('docs/ie-virsh.md')
    const crash = refusal(() => parseReply({stdout: 'not json', stderr: '@shien {"type":"note","message":"x"}\nTypeError: y\n', code: 1}, virsh))
    expect(crash.code).toBe('REMOTE_FAILED')
    expect(crash.message).toBe('ie-virsh start failed on the blade (exit 1): TypeError: y.')
  })
})
