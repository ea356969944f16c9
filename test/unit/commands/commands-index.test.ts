import {readFileSync} from 'node:fs'

import {describe, expect, it} from 'vitest'

import commands from '../../../commands/index.js'
// @ts-expect-error: a plain ESM script without types
import {INDEX_FILE, renderCommandsIndex} from '../../../scripts/commands-index.mjs'

describe('commands/index.ts', () => {
  it('lists every command file under commands/ (run "npm run commands:index" when this fails)', () => {
    expect(readFileSync(INDEX_FILE, 'utf8')).toBe(renderCommandsIndex())
  })

  it('keys each command by the id oclif would give its file, in sorted order', () => {
    const ids = Object.keys(commands)
    expect(ids).toEqual([...ids].sort())
    expect(ids).toEqual(expect.arrayContaining(['push', 'init', 'audit', 'vm:list', 'vm:ssh', 'vm:ssh-config', 'vm:stop', 'blade:host-keys', 'blade:convert', 'blade:cloud-push', 'box:publish', 'box:unpublish', 'container:rmi', 'admin:pushes', 'help', 'version', 'commands', 'autocomplete', 'autocomplete:create', 'autocomplete:script', 'config:get', 'config:set', 'config:unset', 'config:list', 'config:path']))
    expect(ids).toHaveLength(62)
    expect(commands['blade:convert'].hidden).toBe(true)
  })

  it('is the order of the commands in oclif.manifest.json', () => {
    const manifest = JSON.parse(readFileSync(new URL('../../../oclif.manifest.json', import.meta.url), 'utf8')) as {commands: object}
    expect(Object.keys(manifest.commands)).toEqual(Object.keys(commands))
  })
})
