import {describe, expect, it} from 'vitest'

import {ExitCode} from '../../../src/errors.js'
import {getentLookup, resolveCaller} from '../../../src/privileged/caller.js'

const accounts: Record<number, string> = {0: 'root', 1001: 'e195701', 1002: 'k198584'}
const lookup = async (uid: number) => accounts[uid]

describe('who the caller is', () => {
  it('is SUDO_UID when root runs through sudo, whatever else the environment says', async () => {
    const env = {SUDO_UID: '1001', SUDO_USER: 'k198584', USER: 'k198584', LOGNAME: 'root', SHIEN_ACCOUNT: 'k198584'}
    expect(await resolveCaller(env, 0, lookup, 'ie-virsh')).toEqual({uid: 1001, account: 'e195701', viaSudo: true})
  })

  it('is root itself when root runs it without sudo (admin work)', async () => {
    expect(await resolveCaller({}, 0, lookup, 'ie-virsh')).toEqual({uid: 0, account: 'root', viaSudo: false})
  })

  it('refuses anyone but root, even with a SUDO_UID of their choosing', async () => {
    await expect(resolveCaller({SUDO_UID: '1002'}, 1001, lookup, 'ie-virsh')).rejects.toMatchObject({
      code: 'NOT_ROOT',
      exitCode: ExitCode.refused,
    })
  })

  it.each([
    ['ie-virsh', 'sudo ie-virsh list'],
    ['ie-docker', 'sudo ie-docker ps'],
  ] as const)('names %s, the command that was run, when it did not come through sudo', async (tool, hint) => {
    const refusal = resolveCaller({SUDO_UID: '1001'}, 1001, lookup, tool)
    await expect(refusal).rejects.toMatchObject({message: `${tool} must be run through sudo.`, suggestions: [`Run it as: ${hint}`]})
  })

  it.each(['', 'abc', '1001 ', '-1', '01001', '1e3', '0x10'])('refuses SUDO_UID %j', async (uid) => {
    await expect(resolveCaller({SUDO_UID: uid}, 0, lookup, 'ie-virsh')).rejects.toMatchObject({code: 'BAD_CALLER'})
  })

  it('refuses a uid without an account, or whose name breaks the account pattern', async () => {
    await expect(resolveCaller({SUDO_UID: '4242'}, 0, lookup, 'ie-virsh')).rejects.toMatchObject({code: 'BAD_CALLER'})
    await expect(resolveCaller({SUDO_UID: '7'}, 0, async () => '../../etc', 'ie-virsh')).rejects.toMatchObject({code: 'BAD_CALLER'})
  })

  it('looks uids up with the real getent', async () => {
    expect(await getentLookup(0)).toBe('root')
    expect(await getentLookup(3_999_999_999)).toBeUndefined()
  })
})
