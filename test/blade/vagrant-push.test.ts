import {mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {beforeAll, describe, expect, it} from 'vitest'

import {runShien, SHIEN_BIN} from '../support/cli.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {makeBox} from '../support/make-box.js'

let blade: LocalBlade

beforeAll(async () => {
  blade = await ensureLocalBlade()
}, 900_000)

describe('vagrant push shien (real Vagrant)', () => {
  it('runs shien push with the project settings that shien init wrote', async () => {
    const project = mkdtempSync(join(tmpdir(), 'vagrant-project-'))
    writeFileSync(join(project, 'Vagrantfile'), 'Vagrant.configure("2") do |config|\n  config.vm.box = "os101/debian12"\nend\n')
    // A box whose disk holds no operating system: the push must get through upload and
    // convert, then stop at harden and leave the slot as it was.
    await makeBox(project, 'course.box', {})
    const init = await runShien(['init', '--host', 'blade', '--slot', '04', '--box', 'course.box', '--name', 'vagrant-push'], {home: blade.laptopHome, cwd: project})
    expect(init.exitCode, init.stderr).toBe(0)
    const bin = mkdtempSync(join(tmpdir(), 'bin-'))
    symlinkSync(SHIEN_BIN, join(bin, 'shien'))
    mkdirSync(join(project, '.vagrant.d'))
    const run = await execa('vagrant', ['push', 'shien'], {
      cwd: project,
      env: {HOME: blade.laptopHome, VAGRANT_HOME: join(project, '.vagrant.d'), PATH: `${bin}:${process.env.PATH}`, SSH_AUTH_SOCK: ''},
      reject: false,
    })
    const output = String(run.stdout) + String(run.stderr)
    expect(output).toContain('Upload done')
    expect(output).toContain('Convert done')
    expect(output).toContain('Error (HARDEN_NO_OS)')
    expect(run.exitCode).not.toBe(0)
    const images = readdirSync(join(blade.storageRoot, 'users', blade.account, 'images'))
    expect(images.filter((f) => f.startsWith('04') || f.startsWith('.04'))).toEqual([])
  }, 300_000)
})
