import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {admittedStep, helperCommand, withAdmission} from '../../../src/blade/admission.js'
import {DEFAULT_BLADE_CONFIG} from '../../../src/config/blade-config.js'
import {userPaths} from '../../../src/config/storage-layout.js'
import type {AdmissionEvent} from '../../../src/protocol/admission-events.js'

/**
 * withAdmission's side of the helper's protocol, against stand-ins that print what the helper
 * prints (the real helper, as root, is test/integration/blade-admission.test.ts).
 */
const dir = mkdtempSync(join(tmpdir(), 'shien-admission-unit-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

/**
 * A helper that prints `lines`, then (like the real one) holds until its stdin ends, and leaves a
 * mark. It ignores TERM, as a helper behind sudo does not get the step's TERM: the end of its
 * stdin alone must release it.
 */
const standIn = (mark: string, ...lines: string[]) => ['/bin/sh', '-c', `trap '' TERM; printf '%s\\n' "$@"; cat >/dev/null; touch ${mark}`, 'helper', ...lines]
const ADMITTED = '{"type":"admitted","waitedMs":1500}'
const request = (helper: string[], events: AdmissionEvent[] = []) => ({step: 'harden' as const, slot: '01', helper, signal: new AbortController().signal, onEvent: (e: AdmissionEvent) => events.push(e)})

describe('withAdmission', () => {
  it('passes the helper its arguments and events, runs the work once admitted, and closes its stdin after', async () => {
    const mark = join(dir, 'released-ok')
    const events: AdmissionEvent[] = []
    const waiting = '{"type":"waiting","ahead":2,"running":1,"bound":1,"elapsedMs":5000}'
    const argsFile = join(dir, 'args')
    const helper = ['/bin/sh', '-c', `trap '' TERM; echo "$@" > ${argsFile}; echo '${waiting}'; echo 'not json'; echo '${ADMITTED}'; cat >/dev/null; touch ${mark}`, 'helper']
    const result = await withAdmission(request(helper, events), async () => {
      expect(existsSync(mark)).toBe(false)
      return 42
    })
    expect(result).toBe(42)
    expect(events).toEqual([JSON.parse(waiting), JSON.parse(ADMITTED)])
    expect(existsSync(mark)).toBe(true)
    expect(readFileSync(argsFile, 'utf8').trim()).toBe('admit --step harden --slot 01')
  })

  it('closes the helper\'s stdin when the work fails, and keeps the work\'s error', async () => {
    const mark = join(dir, 'released-failed')
    await expect(withAdmission(request(standIn(mark, ADMITTED)), async () => {
      throw new Error('qemu-img failed')
    })).rejects.toThrow('qemu-img failed')
    expect(existsSync(mark)).toBe(true)
  })

  it('fails with the helper\'s own error (code, exit code, suggestions) before any work', async () => {
    const refusal = JSON.stringify({error: {code: 'PUSH_ALREADY_QUEUED', message: 'You already have a push waiting or running on this blade', exitCode: 6, suggestions: ['Wait.']}})
    const helper = ['/bin/sh', '-c', `echo '${refusal}'; exit 6`]
    let ran = false
    const error = await withAdmission(request(helper), async () => (ran = true)).catch((e: unknown) => e)
    expect(error).toMatchObject({code: 'PUSH_ALREADY_QUEUED', exitCode: 6, suggestions: ['Wait.']})
    expect(ran).toBe(false)
  })

  it('is ADMISSION_UNAVAILABLE, with advice for the admin, when the helper cannot be run or is too old', async () => {
    const usage = JSON.stringify({error: {code: 'USAGE', message: 'Unknown command "admit".', exitCode: 2}})
    for (const [helper, why] of [
      [['/nonexistent/sudo'], /ENOENT|not found/],
      [['/bin/sh', '-c', 'echo "sudo: a password is required" >&2; exit 1'], /sudo: a password is required/],
      [['/bin/sh', '-c', `echo '${usage}'; exit 2`], /Unknown command "admit"/],
    ] as const) {
      const error = await withAdmission(request([...helper]), async () => 'never').catch((e: unknown) => e)
      expect(error, helper.join(' ')).toMatchObject({code: 'ADMISSION_UNAVAILABLE', exitCode: 5, suggestions: [expect.stringMatching(/sudo shien admin provision/)]})
      expect((error as Error).message).toMatch(why)
    }
  })

  it('stops waiting at once when cancelled: the helper is told, the work never runs', async () => {
    const mark = join(dir, 'released-cancelled')
    const controller = new AbortController()
    const events: AdmissionEvent[] = []
    const waiting = '{"type":"waiting","ahead":0,"running":1,"bound":1,"elapsedMs":0}'
    const pending = withAdmission({...request(standIn(mark, waiting), events), signal: controller.signal}, async () => 'never')
    while (events.length === 0) await new Promise((r) => setTimeout(r, 10))
    controller.abort(new Error('interrupted'))
    await expect(pending).rejects.toThrow('interrupted')
    expect(existsSync(mark)).toBe(true)
  })
})

describe('the blade steps\' admission', () => {
  const ctx = {account: 'e195701', config: DEFAULT_BLADE_CONFIG, paths: userPaths('/gfs2/shien', 'e195701')}

  it('runs the sudo rule\'s ie-virsh, by its absolute path from the config', () => {
    expect(helperCommand(DEFAULT_BLADE_CONFIG)).toEqual(['sudo', '-n', '/usr/local/bin/ie-virsh'])
    expect(() => helperCommand({ieVirsh: 'ie-virsh'})).toThrow(expect.objectContaining({code: 'CONFIG_INVALID'}))
  })

  it('refuses a bad slot before starting anything', async () => {
    let ran = false
    await expect(admittedStep(ctx, 'convert', '../01', new AbortController().signal, async () => (ran = true))).rejects.toMatchObject({code: 'BAD_SLOT'})
    expect(ran).toBe(false)
  })
})
