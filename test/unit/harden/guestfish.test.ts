/**
 * The guestfish adapter against the real guestfish binary. `echo` and argument errors are handled
 * by guestfish itself, so these tests need no appliance launch.
 */
import {describe, expect, it} from 'vitest'
import {applianceLaunches, GuestfishSession, MAX_LINE_BYTES, quoteArg} from '../../../src/harden/guestfish.js'

describe('GuestfishSession (no appliance)', () => {
  it('passes every argument through exactly, so guest-controlled text cannot become a command', async () => {
    const g = await GuestfishSession.start()
    const args = ['a b', 'quo"te', 'back\\slash', 'x | touch /tmp/pwned', '!id', 'new\nline', 'ünïcødé', '$(id)', '#not-a-comment', "it's"]
    try {
      expect(await g.call('echo', ...args)).toBe(`${args.join(' ')}\n`)
      expect(await g.call('echo', 'second call, same session')).toBe('second call, same session\n')
    } finally {
      await g.close()
    }
  })

  it('gives the appliance the memory asked for, through guestfish\'s environment only', async () => {
    const g = await GuestfishSession.start({memMiB: 384})
    try {
      expect(await g.call('get-memsize')).toBe('384\n')
    } finally {
      await g.close()
    }
    expect(process.env.LIBGUESTFS_MEMSIZE).toBeUndefined()
    // libguestfs ignores less than 256 and would launch with its default (1280): refused here.
    await expect(GuestfishSession.start({memMiB: 128})).rejects.toMatchObject({code: 'GUESTFISH_BAD_ARG'})
  })

  it('rejects a failed command with guestfish\'s own message, and the session is over', async () => {
    const before = applianceLaunches()
    const g = await GuestfishSession.start()
    const error = await g.call('is-file', '/etc/passwd').catch((e: unknown) => e)
    expect(error).toMatchObject({code: 'GUESTFISH_FAILED', message: expect.stringMatching(/launch/)})
    await expect(g.call('echo', 'x')).rejects.toMatchObject({code: 'GUESTFISH_FAILED'})
    await g.kill()
    expect(applianceLaunches()).toBe(before)
  })

  it('refuses command names and arguments guestfish cannot take safely, before sending anything', async () => {
    const g = await GuestfishSession.start()
    try {
      await expect(g.call('!sh', '-c', 'id')).rejects.toMatchObject({code: 'GUESTFISH_BAD_ARG'})
      await expect(g.call('echo', 'nul\0byte')).rejects.toMatchObject({code: 'GUESTFISH_BAD_ARG'})
      expect(await g.call('echo', 'still alive')).toBe('still alive\n')
    } finally {
      await g.close()
    }
  })

  it('answers commands sent together in order, and ends every one of them on a failure', async () => {
    const g = await GuestfishSession.start()
    const words = Array.from({length: 20}, (_, i) => `word${i}`)
    expect(await Promise.all(words.map((w) => g.call('echo', w)))).toEqual(words.map((w) => `${w}\n`))
    const batch = [g.call('echo', 'before'), g.call('is-file', '/etc/passwd'), g.call('echo', 'after')]
    await expect(batch[0]).resolves.toBe('before\n')
    await expect(batch[1]).rejects.toMatchObject({code: 'GUESTFISH_FAILED'})
    // guestfish exited at the failure: the command written after it never ran.
    await expect(batch[2]).rejects.toMatchObject({code: 'GUESTFISH_FAILED'})
    await g.kill()
  })

  it('tryCall: a failing probe answers \'\' and the session goes on', async () => {
    const g = await GuestfishSession.start()
    try {
      expect(await g.tryCall('is-file', '/etc/passwd')).toBe('')
      expect(await g.stat('/etc/passwd')).toBeUndefined()
      expect(await g.call('echo', 'alive')).toBe('alive\n')
    } finally {
      await g.close()
    }
  })

  it('refuses a line guestfish would cut at 8 KiB (the rest would run as a command of its own)', async () => {
    const g = await GuestfishSession.start()
    try {
      // 2100 bytes that each need \xHH: 8400 characters quoted.
      await expect(g.call('is-dir', ' '.repeat(2100))).rejects.toMatchObject({code: 'GUESTFISH_BAD_ARG'})
      const fits = 'a'.repeat(MAX_LINE_BYTES - 20)
      expect(await g.call('echo', fits)).toBe(`${fits}\n`)
    } finally {
      await g.close()
    }
  })

  it('is cancelled by its AbortSignal', async () => {
    const controller = new AbortController()
    const g = await GuestfishSession.start({signal: controller.signal})
    expect(await g.call('echo', 'up')).toBe('up\n')
    controller.abort()
    await expect(g.close()).resolves.toBeUndefined()
    await expect(g.call('echo', 'x')).rejects.toMatchObject({code: 'GUESTFISH_CANCELLED', exitCode: 130})
  })
})

describe('quoteArg', () => {
  it('writes only safe bytes literally and everything else as \\xHH inside double quotes', () => {
    expect(quoteArg('/home/vagrant/.ssh')).toBe('"/home/vagrant/.ssh"')
    expect(quoteArg('a b|"')).toBe('"a\\x20b\\x7c\\x22"')
    expect(quoteArg('é')).toBe('"\\xc3\\xa9"')
    expect(quoteArg(Buffer.from([0xff, 0x41, 0x0a]))).toBe('"\\xffA\\x0a"')
  })
})
