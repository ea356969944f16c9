import {mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {planPush} from '../../../src/push/plan.js'
import {addPushStanza, initProject} from '../../../src/push/vagrant-init.js'

function project(files: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'proj-'))
  const home = mkdtempSync(join(tmpdir(), 'home-'))
  mkdirSync(join(home, '.ssh'))
  writeFileSync(join(home, '.ssh', 'config'), 'Host blade\n  HostName 127.0.0.1\n  Port 2222\n  User e195701\n')
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  return {dir, env: {HOME: home, XDG_CONFIG_HOME: join(home, '.config')}}
}

describe('planPush', () => {
  it('takes host, slot and name from .shien.json and the target from ~/.ssh/config', () => {
    const {dir, env} = project({'Vagrantfile': '', '.shien.json': '{"host":"blade","slot":"2","name":"os101"}'})
    const plan = planPush({cwd: dir, env})
    expect(plan).toMatchObject({slot: '02', name: 'os101', boxPath: undefined, replace: false})
    expect(plan.target).toMatchObject({hostName: '127.0.0.1', port: 2222, user: 'e195701'})
    expect(plan.target.userKnownHostsFiles[0]).toBe(join(env.HOME, '.ssh', 'known_hosts'))
    // How the blade was named, for the OpenSSH login to the VM: as given, with the -F that ssh -G got.
    expect(plan.naming).toEqual({bladeSpec: 'blade', home: env.HOME, sshConfigFile: join(env.HOME, '.ssh', 'config')})
    expect(planPush({cwd: dir, env, host: 'e195701@blade:2200', jump: 'gw1'}).naming).toMatchObject({bladeSpec: 'e195701@blade:2200', jump: 'gw1'})
  })

  it('reports every problem at once', () => {
    const {dir, env} = project({})
    let message = ''
    try {
      planPush({cwd: dir, env, box: 'missing.box', slot: '1x', name: '../etc'})
    } catch (error) {
      message = (error as Error).message
    }
    expect(message).toContain('missing.box is not a file')
    expect(message).toContain('Slot "1x"')
    expect(message).toContain('No blade named')
    expect(message).toContain('"../etc" cannot name a box')
  })
})

describe('shien init', () => {
  const vagrantfile = 'Vagrant.configure("2") do |cfg|\n  cfg.vm.box = "debian/bookworm64"\nend\n'

  it('adds the push stanza inside the configure block, once', () => {
    const once = addPushStanza(vagrantfile)!
    expect(once).toContain('cfg.push.define "shien", strategy: "local-exec" do |push|')
    expect(once.indexOf('push.define')).toBeLessThan(once.lastIndexOf('\nend'))
    expect(addPushStanza(once)).toBeUndefined()
  })

  it('writes .shien.json and the Vagrantfile, and refuses to overwrite without --force', async () => {
    const {dir} = project({Vagrantfile: vagrantfile})
    const result = await initProject(dir, {host: 'blade', slot: '01'}, false)
    expect(result.stanzaAdded).toBe(true)
    expect(JSON.parse(readFileSync(join(dir, '.shien.json'), 'utf8'))).toEqual({host: 'blade', slot: '01'})
    await expect(initProject(dir, {host: 'other'}, false)).rejects.toThrow(/exists already/)
    expect(JSON.parse(readFileSync(join(dir, '.shien.json'), 'utf8')).host).toBe('blade')
  })

  it('refuses a Vagrantfile it cannot place the stanza in, and writes nothing', async () => {
    const {dir} = project({Vagrantfile: 'puts "hello"\n'})
    await expect(initProject(dir, {host: 'blade'}, false)).rejects.toThrow(/Vagrant.configure/)
    expect(() => readFileSync(join(dir, '.shien.json'))).toThrow()
  })
})
