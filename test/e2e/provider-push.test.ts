import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {REPO_ROOT, runShien} from '../support/cli.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {providerBoxesFrom} from '../support/provider-boxes.js'
import {waitForBanner} from '../support/ssh-banner.js'
import {testBoxPath} from '../support/test-box.js'
import {clearSlot} from '../support/virsh.js'

// The amd64 test boxes' disks as a Mac's other providers package them (Parallels: a .pvm bundle
// with an expanding image, made from the UEFI box and declaring EFI; libvirt/qemu: a qcow2
// box.img of the BIOS box), pushed to the local blade: each is converted naming its format,
// hardened, defined (the Parallels one as an x86_64 UEFI machine with OVMF and a variable store
// of its own) and booted to an sshd that lets the student in with their own key and not with
// Vagrant's. (The VMware layout, a split VMDK, is the box test/blade/audit-live.test.ts pushes
// and boots.)
const SLOTS = {parallels: '02', libvirt: '03'} as const
const BOOT_MS = 600_000
/** The disks' sizes: the UEFI box's (GPT, an ESP) and the BIOS box's. */
const VIRTUAL_SIZE = {parallels: 1159725056, libvirt: 1006449152} as const
const INSECURE = join(REPO_ROOT, 'test/fixtures/vagrant-insecure/vagrant.key.ed25519')

let blade: LocalBlade
let dir: string
let boxes: Record<keyof typeof SLOTS, string>
let savedKnownHosts: string

beforeAll(async () => {
  blade = await ensureLocalBlade()
  dir = await mkdtemp(join(tmpdir(), 'shien-provider-push-'))
  const {parallels} = await providerBoxesFrom(await testBoxPath('amd64', 'efi'), join(dir, 'efi'), ['parallels'], 'efi')
  const {libvirt} = await providerBoxesFrom(await testBoxPath(), join(dir, 'bios'), ['libvirt'])
  boxes = {parallels, libvirt}
  savedKnownHosts = await readFile(blade.knownHosts, 'utf8')
  await Promise.all(Object.values(SLOTS).map((slot) => clearSlot(blade.account, slot)))
}, 900_000)

afterAll(async () => {
  if (!blade) return
  await Promise.all(Object.values(SLOTS).map((slot) => clearSlot(blade.account, slot)))
  await writeFile(blade.knownHosts, savedKnownHosts)
  if (dir) await rm(dir, {recursive: true, force: true})
})

describe("boxes of a Mac's other providers, pushed and booted on the local blade", () => {
  it('a Parallels box and a libvirt box each convert from their own format, boot, and let the student in with their key only', async () => {
    const ports: Record<string, number> = {}
    for (const [format, slot] of Object.entries(SLOTS)) {
      const push = await runShien(['push', boxes[format as keyof typeof SLOTS], '--host', blade.hostAlias, '--slot', slot, '--name', format, '--json'], {home: blade.laptopHome})
      expect(push.exitCode, `${format}: ${push.stderr}${push.stdout}`).toBe(0)
      expect(push.json).toMatchObject({slot, state: 'running', login: `shien vm ssh ${slot}`})
      const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', '-U', join(blade.storageRoot, 'users', blade.account, 'images', `${slot}.qcow2`)])).stdout)
      expect(info).toMatchObject({format: 'qcow2', 'virtual-size': VIRTUAL_SIZE[format as keyof typeof SLOTS]})
      expect(info['backing-filename']).toBeUndefined()
    }
    // The Parallels box declared EFI: an x86_64 UEFI machine, OVMF with a variable store of its own.
    const xml = (await execa('virsh', ['-c', 'qemu:///system', 'dumpxml', `${blade.account}-${SLOTS.parallels}`])).stdout
    expect(xml).toMatch(/<type arch=['"]x86_64['"]/)
    expect(xml).toMatch(/<loader[^>]*>\/usr\/share\/OVMF\/OVMF_CODE[^<]*\.fd<\/loader>/)
    expect(xml).toContain(`/users/${blade.account}/images/${SLOTS.parallels}.vars.fd`)
    const list = await runShien(['vm', 'list', '--host', blade.hostAlias, '--json'], {home: blade.laptopHome})
    for (const [format, slot] of Object.entries(SLOTS)) ports[format] = list.json.domains.find((d: {slot: string}) => d.slot === slot).sshPort
    // Both boot at once under TCG.
    const waited = await Promise.all(Object.values(ports).map((port) => waitForBanner(port, BOOT_MS)))
    console.log(`parallels (UEFI) and libvirt (BIOS) VMs: sshd answered ${waited.map((ms) => (ms / 1000).toFixed(0)).join(' s and ')} s after both pushes returned (TCG)`)

    for (const [format, slot] of Object.entries(SLOTS)) {
      const login = await runShien(['vm', 'ssh', slot, '--host', blade.hostAlias, '--', 'grep ^ID= /etc/os-release; test -d /sys/firmware/efi && echo booted-efi || echo booted-bios'], {home: blade.laptopHome})
      expect(login.exitCode, `${format}: ${login.stderr}`).toBe(0)
      expect(login.stdout).toContain('ID=debian')
      expect(login.stdout).toContain(format === 'parallels' ? 'booted-efi' : 'booted-bios')
      expect(login.stderr).not.toMatch(/authenticity|warning|changed/i)
      const insecure = await execa('ssh', ['-i', INSECURE, '-p', String(ports[format]), '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no',
        '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=30', 'vagrant@127.0.0.1', 'true'], {reject: false})
      expect(insecure.exitCode, format).toBe(255)
      expect(insecure.stderr).toMatch(/Permission denied/)
    }
  }, 2 * BOOT_MS + 900_000)
})
