// shien's oclif conventions: help, -h, --version, -v, shien version, shien commands, shell
// completion, help wrapped to the terminal's width, and the update notice.
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {stripVTControlCharacters} from 'node:util'

import {execa} from 'execa'
import {afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi} from 'vitest'

import {quietUpdateNotice} from '../../../src/ui/update-notice.js'
import {SHIEN_BIN} from '../../support/cli.js'
import {assertBuildIsCurrent, shien} from '../../support/run-command.js'

const home = mkdtempSync(join(tmpdir(), 'laptop-'))
const {name: NAME, version: VERSION} = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {name: string; version: string}

beforeAll(() => assertBuildIsCurrent())
afterAll(() => rmSync(home, {recursive: true, force: true}))
beforeEach(() => {
  vi.stubEnv('HOME', home)
  vi.stubEnv('XDG_CACHE_HOME', join(home, '.cache'))
  vi.stubEnv('XDG_CONFIG_HOME', join(home, '.config'))
  vi.stubEnv('SHIEN_SKIP_NEW_VERSION_CHECK', 'true')
})
afterEach(() => vi.unstubAllEnvs())

/** `node bin/shien.js ...` with only the environment given (no CI variables of the machine's). */
async function spawnShien(args: string[], env: Record<string, string> = {}) {
  const result = await execa('node', [SHIEN_BIN, ...args], {
    env: {PATH: process.env.PATH ?? '', HOME: home, XDG_CONFIG_HOME: join(home, '.config'), CI: 'false', ...env},
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
  })
  return {exitCode: result.exitCode, stdout: String(result.stdout), stderr: stripVTControlCharacters(String(result.stderr))}
}

describe('help', () => {
  it.each([[['help', 'push']], [['push', '-h']], [['push', '--help']]])('%j shows push\'s help', async (args) => {
    const run = await shien(args)
    expect(run.exitCode).toBe(0)
    expect(run.stdout).toMatch(/^USAGE\n {2}\$ shien push \[BOX\]/m)
  })

  it('shien -h and shien help list the topics', async () => {
    for (const args of [['-h'], ['help']]) {
      const run = await shien(args)
      expect(run.exitCode).toBe(0)
      expect(run.stdout).toMatch(/^TOPICS\n {2}admin\s/m)
    }
  })

  it('wraps to the width of the terminal (OCLIF_COLUMNS stands in for it)', async () => {
    const narrow = await spawnShien(['push', '--help'], {OCLIF_COLUMNS: '60'})
    const wide = await spawnShien(['push', '--help'], {OCLIF_COLUMNS: '140'})
    // oclif prints the one-line summary on top as it is; everything under it is wrapped.
    const longest = (text: string) => Math.max(...text.split('\n').slice(1).map((line) => line.length))
    expect(longest(narrow.stdout)).toBeLessThanOrEqual(60)
    expect(longest(wide.stdout)).toBeGreaterThan(80)
    expect(longest(wide.stdout)).toBeLessThanOrEqual(140)
    expect(narrow.stdout.split('\n').length).toBeGreaterThan(wide.stdout.split('\n').length)
  })
})

describe('version', () => {
  it.each([[['--version']], [['-v']], [['version']]])('%j prints the package name/VERSION with the platform and node', async (args) => {
    const run = await shien(args)
    expect(run.exitCode).toBe(0)
    expect(run.stdout.trim()).toBe(`${NAME}/${VERSION} ${process.platform}-${process.arch} node-${process.version}`)
  })

  it('shien version --json gives the same as an object', async () => {
    const run = await shien(['version', '--json'])
    expect(run.exitCode).toBe(0)
    expect(run.json).toEqual({cliVersion: `${NAME}/${VERSION}`, architecture: `${process.platform}-${process.arch}`, nodeVersion: `node-${process.version}`})
  })
})

describe('shien commands', () => {
  it('lists every visible command, and the hidden ones with --hidden', async () => {
    const run = await shien(['commands', '--json'])
    const ids = (run.json as {id: string}[]).map((command) => command.id)
    expect(ids).toEqual(expect.arrayContaining(['push', 'vm:list', 'box:publish', 'help', 'version', 'autocomplete']))
    expect(ids).not.toContain('blade:convert')
    const hidden = await shien(['commands', '--hidden', '--json'])
    expect((hidden.json as {id: string}[]).map((command) => command.id)).toContain('blade:convert')
  })
})

describe('shell completion', () => {
  it('shien autocomplete bash says what to add to ~/.bashrc', async () => {
    const run = await shien(['autocomplete', 'bash'])
    expect(run.exitCode).toBe(0)
    expect(run.stdout).toContain('printf "$(shien autocomplete script bash)" >> ~/.bashrc')
  })

  it('completes commands, spaced topics and flags in a real bash, and not the hidden blade steps', async () => {
    const cache = join(home, 'cache-bash')
    const created = await spawnShien(['autocomplete', 'create'], {XDG_CACHE_HOME: cache})
    expect(created.exitCode, created.stderr).toBe(0)
    const script = await spawnShien(['autocomplete', 'script', 'bash'], {XDG_CACHE_HOME: cache})
    const complete = (line: string) => {
      const words = line.split(' ')
      return execa('bash', ['-c', `${script.stdout}\nCOMP_WORDS=(${line}); COMP_CWORD=${words.length - 1}; COMP_LINE="${line}"; COMP_POINT=\${#COMP_LINE}; _shien_autocomplete; printf '%s\\n' "\${COMPREPLY[@]}"`], {env: {HOME: home}})
    }
    expect(String((await complete('shien vm li')).stdout).trim()).toBe('list')
    expect(String((await complete('shien push --cha')).stdout).trim()).toBe('--channels')
    expect(String((await complete('shien bla')).stdout).trim()).toBe('')
  })

  it('writes a zsh completion function with the commands and their flags', async () => {
    const cache = join(home, 'cache-zsh')
    expect((await spawnShien(['autocomplete', 'create'], {XDG_CACHE_HOME: cache})).exitCode).toBe(0)
    const zsh = readFileSync(join(cache, 'shien', 'autocomplete', 'functions', 'zsh', '_shien'), 'utf8')
    expect(zsh).toMatch(/^#compdef shien/)
    expect(zsh).toContain('--channels')
    expect(zsh).toMatch(/"list\[/)
    const script = await spawnShien(['autocomplete', 'script', 'zsh'], {XDG_CACHE_HOME: cache})
    expect(script.stdout).toContain(`SHIEN_AC_ZSH_SETUP_PATH=${join(cache, 'shien', 'autocomplete', 'zsh_setup')}`)
  })
})

describe('the update notice', () => {
  /** A cache where oclif's last look-up found `latest` on npm, too fresh to be looked up again. */
  function cacheWithLatest(latest: string): string {
    const cache = mkdtempSync(join(home, 'cache-'))
    mkdirSync(join(cache, 'shien'))
    writeFileSync(join(cache, 'shien', 'version'), JSON.stringify({latest, current: VERSION}))
    return cache
  }

  it('says a newer @ie-ryukyu/shien is out, on stderr', async () => {
    const run = await spawnShien(['version'], {XDG_CACHE_HOME: cacheWithLatest('99.0.0')})
    expect(run.exitCode).toBe(0)
    expect(run.stdout.trim()).toMatch(new RegExp(`^${NAME}/`))
    // oclif wraps a warning and starts each of its lines with "›".
    const notice = run.stderr.replaceAll(/\s*›\s*/g, ' ').trim()
    expect(notice).toBe(`Warning: ${NAME} 99.0.0 is out (you have ${VERSION}): npm install -g @ie-ryukyu/shien`)
  })

  it.each([
    ['in CI', ['version'], {CI: 'true'}],
    ['in GitHub Actions', ['version'], {GITHUB_ACTIONS: 'true', CI: ''}],
    ['under --json', ['version', '--json'], {}],
  ])('is silent %s', async (_, args, env) => {
    const run = await spawnShien(args, {XDG_CACHE_HOME: cacheWithLatest('99.0.0'), ...env})
    expect(run.exitCode).toBe(0)
    expect(run.stderr).toBe('')
  })

  it('is silent offline: the look-up fails in the background and the command goes on', async () => {
    const cache = mkdtempSync(join(home, 'cache-'))
    // Nothing listens on port 9 of the loopback: the look-up is refused, as with no network.
    const run = await spawnShien(['version'], {XDG_CACHE_HOME: cache, npm_config_registry: 'http://127.0.0.1:9/'})
    expect(run.exitCode).toBe(0)
    expect(run.stdout.trim()).toMatch(new RegExp(`^${NAME}/`))
    expect(run.stderr).toBe('')
    // The background look-up started (it writes the current version first) and found nothing newer.
    await vi.waitFor(() => expect(JSON.parse(readFileSync(join(cache, 'shien', 'version'), 'utf8'))).toEqual({current: VERSION}), {timeout: 5000})
    const again = await spawnShien(['version'], {XDG_CACHE_HOME: cache, npm_config_registry: 'http://127.0.0.1:9/'})
    expect(again.stderr).toBe('')
  })

  it('is turned off through the variable the plugin reads, in CI or for --json only', () => {
    const env: NodeJS.ProcessEnv = {}
    quietUpdateNotice(['push'], env, false)
    expect(env.SHIEN_SKIP_NEW_VERSION_CHECK).toBeUndefined()
    quietUpdateNotice(['push', '--', '--json'], env, false)
    expect(env.SHIEN_SKIP_NEW_VERSION_CHECK).toBeUndefined()
    quietUpdateNotice(['push', '--json'], env, false)
    expect(env.SHIEN_SKIP_NEW_VERSION_CHECK).toBe('true')
    const ci: NodeJS.ProcessEnv = {}
    quietUpdateNotice(['push'], ci, true)
    expect(ci.SHIEN_SKIP_NEW_VERSION_CHECK).toBe('true')
  })
})

describe('a mistyped command on a terminal', () => {
  /** Runs shien in a pseudo-terminal (util-linux `script`) and answers the "Did you mean" prompt. */
  async function answer(words: string, reply: string) {
    const child = execa('script', ['-qfec', `node ${SHIEN_BIN} ${words}; echo "exit=$?"`, '/dev/null'], {
      env: {PATH: process.env.PATH ?? '', HOME: home, XDG_CACHE_HOME: join(home, '.cache'), SHIEN_SKIP_NEW_VERSION_CHECK: 'true', CI: 'false'},
      extendEnv: false,
      reject: false,
    })
    let seen = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      seen += chunk.toString()
      if (seen.includes('Did you mean') && reply !== '') {
        child.stdin?.write(`${reply}\r`)
        reply = ''
      }
    })
    const result = await child
    return stripVTControlCharacters(String(result.stdout)).replaceAll('\r', '')
  }

  it('asks "Did you mean" and runs the command named when the answer is yes', async () => {
    const out = await answer('versoin', 'y')
    expect(out).toContain('Did you mean version?')
    expect(out).toMatch(new RegExp(`^${NAME}/${VERSION.replaceAll('.', '\\.')} `, 'm'))
    expect(out).toContain('exit=0')
  })

  it('is a USAGE error with "Try this:" when the answer is no', async () => {
    const out = await answer('versoin', 'n')
    expect(out).toContain('Error (USAGE): "versoin" is not a shien command.\nTry this:\n  Did you mean "shien version"?\n  shien help lists the commands.')
    expect(out).toContain('exit=2')
  })

  it('asks nothing under --json: the envelope only', async () => {
    const out = await answer('versoin --json', '')
    expect(out).not.toContain('Did you mean version?')
    expect(JSON.parse(out.slice(0, out.lastIndexOf('exit=')))).toEqual({error: {code: 'USAGE', message: '"versoin" is not a shien command.', exitCode: 2, suggestions: ['Did you mean "shien version"?', 'shien help lists the commands.']}})
    expect(out).toContain('exit=2')
  })
})
