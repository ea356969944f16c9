import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {main as ieDocker} from '../../../src/docker/main.js'
import type {Directory} from '../../../src/directory/directory.js'
import {main as ieVirsh} from '../../../src/virsh/main.js'

// ie-virsh and ie-docker share their start (caller, config, standing) and their error output:
// each must speak of itself, never of the other.
const accounts: Record<number, string> = {0: 'root', 1001: 'e195701', 1002: 'e195702'}
const student: Directory = {
  standing: async (account) => ({entry: {account, uid: account === 'e195701' ? 1001 : 1002, gid: 100, groups: []}, role: 'student'}),
  members: async () => [],
}

describe('the privileged entry of ie-virsh and ie-docker', () => {
  let dir: string
  const deps = (realUid: number, extra: Record<string, unknown> = {}) => ({
    configPath: join(dir, 'config.json'),
    env: {SUDO_UID: '1001'},
    realUid,
    lookupAccount: async (uid: number) => accounts[uid],
    lookupUid: async (account: string) => Number(Object.entries(accounts).find(([, a]) => a === account)?.[0]),
    directory: () => student,
    ...extra,
  })

  async function run(tool: 'ie-virsh' | 'ie-docker', argv: string[], d: Record<string, unknown>) {
    let out = ''
    const entry = tool === 'ie-docker' ? ieDocker : ieVirsh
    const code = await entry(['--json', ...argv], {...d, stdout: (t: string) => (out += t), stderr: () => undefined})
    return {code, error: JSON.parse(out).error as {code: string; message: string; suggestions: string[]}}
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shien-entry-'))
    await writeFile(join(dir, 'config.json'), JSON.stringify({storageRoot: dir}), {mode: 0o644})
  })
  afterAll(() => rm(dir, {recursive: true, force: true}))

  it.each([
    ['ie-docker', ['ps'], 'sudo ie-docker ps'],
    ['ie-virsh', ['list'], 'sudo ie-virsh list'],
  ] as const)('%s run without sudo names itself in the refusal', async (tool, argv, hint) => {
    const r = await run(tool, [...argv], deps(1001))
    expect(r.code).toBe(6)
    expect(r.error.code).toBe('NOT_ROOT')
    expect(r.error.message).toBe(`${tool} must be run through sudo.`)
    expect(r.error.suggestions).toEqual([`Run it as: ${hint}`])
  })

  it.each([
    ['ie-docker', ['ps'], "another account's containers"],
    ['ie-virsh', ['list'], "another account's VMs"],
  ] as const)('%s tells a student that --account is for admins, in its own words', async (tool, argv, words) => {
    const r = await run(tool, ['--account', 'e195702', ...argv], deps(0))
    expect(r.error.code).toBe('NOT_ADMIN')
    expect(r.error.message).toContain(words)
  })

  it.each(['ie-docker', 'ie-virsh'] as const)('%s names itself when something unexpected breaks', async (tool) => {
    const r = await run(tool, [tool === 'ie-docker' ? 'ps' : 'list'], deps(0, {lookupAccount: async () => { throw new TypeError('boom') }}))
    expect(r.error.code).toBe('INTERNAL')
    expect(r.error.message).toBe(`${tool} failed unexpectedly: boom`)
  })
})
