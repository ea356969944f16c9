/**
 * The laptop asking every blade for its facts, over real OpenSSH: each blade is an sshd of the
 * test's own whose ForceCommand runs ie-virsh's real main (test/support/ie-virsh-entry.ts,
 * bundled) with that blade's config, against the system libvirtd, read-only. One blade's port is
 * closed, one accepts and never speaks, one answers under another blade's name.
 */
import {chmod, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {createServer, type Server, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {ClusterBlade} from '../../../src/cluster/blades.js'
import {placeVm} from '../../../src/cluster/placement.js'
import {askBladesForFacts} from '../../../src/client/cluster-facts.js'
import {openDrainedBlades} from '../../../src/privileged/drained-blades.js'
import type {ConnectOptions} from '../../../src/transport/connect.js'
import {startOwnSshd, type OwnSshd} from '../../support/own-sshd.js'
import {closedPort, ensureLibvirtd} from '../../support/system.js'

const REPO_ROOT = join(import.meta.dirname, '../../..')

describe('asking every blade for its facts over SSH', () => {
  let dir: string
  let root: string
  const sshds: OwnSshd[] = []
  let silent: Server
  const sockets: Socket[] = []
  let known: string
  let blades: ClusterBlade[]

  const blade = (name: string, port: number): ClusterBlade => ({name, ssh: `127.0.0.1:${port}`, migrationUri: `qemu+ssh://root@${name}/system`, native: ['x86_64'], keepFreeMiB: 0})

  const access = (b: ClusterBlade): ConnectOptions => {
    const port = Number(b.ssh.split(':')[1])
    return {
      target: {
        alias: '127.0.0.1', hostName: '127.0.0.1', port, user: 'root', identityFiles: [join(sshds[0].dir, 'client')], identitiesOnly: true,
        identityAgent: 'none', userKnownHostsFiles: [known], globalKnownHostsFiles: [], strictHostKeyChecking: 'yes', hashKnownHosts: false, via: [],
      },
      confirmNewHostKey: async () => false,
    }
  }

  beforeAll(async () => {
    await ensureLibvirtd()
    dir = await mkdtemp(join(tmpdir(), 'shien-cfacts-'))
    await chmod(dir, 0o755)
    root = join(dir, 'storage')
    await mkdir(root, {mode: 0o755})
    const ieVirsh = join(dir, 'ie-virsh.mjs')
    // ie-virsh finds its package (version, templates) by walking up from itself.
    await writeFile(join(dir, 'package.json'), await readFile(join(REPO_ROOT, 'package.json')))
    await execa(join(REPO_ROOT, 'node_modules/.bin/rolldown'), ['test/support/ie-virsh-entry.ts', '--platform', 'node', '--format', 'esm', '--inlineDynamicImports', '--file', ieVirsh], {cwd: REPO_ROOT})
    // Each blade's sshd answers the one command the laptop sends with ie-virsh facts under that blade's config.
    for (const name of ['fa', 'fb']) {
      const script = join(dir, `${name}.sh`)
      await writeFile(script, [
        '#!/bin/sh',
        'case "$SSH_ORIGINAL_COMMAND" in',
        `  *ie-virsh*facts*--json*) SHIEN_TEST_CONFIG=${join(dir, `${name}.json`)} exec ${process.execPath} ${ieVirsh} facts --json ;;`,
        '  *) echo "$SSH_ORIGINAL_COMMAND: command not found" >&2; exit 127 ;;',
        'esac',
        '',
      ].join('\n'), {mode: 0o755})
      sshds.push(await startOwnSshd({extraConfig: [`ForceCommand ${script}`]}))
    }
    // Both sshds let in the first one's client key.
    await writeFile(join(sshds[1].dir, 'authorized_keys'), await readFile(join(sshds[0].dir, 'client.pub')))
    known = join(dir, 'known_hosts')
    const lines = await Promise.all(sshds.map(async (s) => `[127.0.0.1]:${s.port} ${(await readFile(join(s.dir, 'host.pub'), 'utf8')).trim()}`))
    await writeFile(known, `${lines.join('\n')}\n`)

    const [a, b] = sshds.map((s) => blade(s === sshds[0] ? 'fa' : 'fb', s.port))
    const config = (self: string) => JSON.stringify({
      storageRoot: root, libvirtUri: 'qemu:///system', domainType: 'qemu', bladeMemoryMiB: 1_000_000,
      arch: {native: ['x86_64'], emulated: []}, cluster: {blades: [a, b], self},
    })
    await writeFile(join(dir, 'fa.json'), config('fa'), {mode: 0o644})
    await writeFile(join(dir, 'fb.json'), config('fb'), {mode: 0o644})

    silent = createServer((socket) => void sockets.push(socket))
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const silentPort = (silent.address() as {port: number}).port
    // fd is fa's sshd under another name: it answers as fa.
    // fe and ff accept and never speak: asked one after the other they would take twice the timeout.
    blades = [a, b, blade('fc', await closedPort()), blade('fd', sshds[0].port), blade('fe', silentPort), {...blade('ff', silentPort), ssh: `localhost:${silentPort}`}]
  }, 120_000)

  afterAll(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => silent?.close(resolve))
    for (const s of sshds) await s.stop()
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  it('gathers every blade at once; an unreachable, silent or mistaken blade is reported, not fatal', async () => {
    await (await openDrainedBlades(root)).drain('fb', 'admin1')
    const started = Date.now()
    const facts = await askBladesForFacts(blades, access, {timeoutMs: 10_000})
    // In parallel: the two silent blades' waits overlap.
    expect(Date.now() - started).toBeLessThan(18_000)
    expect([...facts.keys()]).toEqual(['fa', 'fb', 'fc', 'fd', 'fe', 'ff'])
    const nodeKiB = Number(/Memory size:\s+(\d+) KiB/.exec((await execa('virsh', ['-c', 'qemu:///system', 'nodeinfo'])).stdout)![1])
    expect(facts.get('fa')).toMatchObject({reachable: true, drained: false, memoryMiB: Math.floor(nodeKiB / 1024), capMiB: 1_000_000, native: ['x86_64']})
    expect(facts.get('fb')).toMatchObject({reachable: true, drained: true})
    expect(facts.get('fc')).toMatchObject({reachable: false, why: expect.stringMatching(/^SSH_CONNECT: /)})
    expect(facts.get('fd')).toEqual({reachable: false, why: 'answered as fa, not fd (its cluster.self or host name is wrong)'})
    expect(facts.get('fe')).toEqual({reachable: false, why: 'no answer within 10 s'})
    expect(facts.get('ff')).toEqual({reachable: false, why: 'no answer within 10 s'})

    const placed = placeVm({blades}, facts, {name: 'shien-cf-01', arch: 'x86_64', memoryMiB: 128})
    expect(placed.blade.name).toBe('fa')
    expect(placed.passedOver.map((p) => [p.blade, p.code])).toEqual([['fb', 'DRAINED'], ['fc', 'UNREACHABLE'], ['fd', 'UNREACHABLE'], ['fe', 'UNREACHABLE'], ['ff', 'UNREACHABLE']])
  }, 60_000)

  it("the command's own abort is not an unreachable blade: it rejects", async () => {
    const stop = new AbortController()
    stop.abort(new Error('interrupted'))
    await expect(askBladesForFacts(blades.slice(0, 1), access, {signal: stop.signal})).rejects.toThrow('interrupted')
  })
})
