import {mkdir, mkdtemp, readdir, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type {Readable} from 'node:stream'

import type {AccountStanding, Directory, DirectoryAccount} from '../../../src/directory/directory.js'
import {roleOf} from '../../../src/directory/directory.js'
import {ShienError} from '../../../src/errors.js'
import type {HostFacts} from '../../../src/config/blade-arch.js'
import type {CheckedImage, ImageGate} from '../../../src/virsh/image-check.js'
import type {ImagePlatform} from '../../../src/virsh/image-platform.js'
import type {NvramStore} from '../../../src/virsh/nvram.js'
import {main, type MainDeps} from '../../../src/virsh/main.js'
import type {DomainState, DumpOptions, Hypervisor} from '../../../src/virsh/virsh.js'

const ACTIVE = (s: DomainState) => s !== 'shut off' && s !== 'crashed'

/** libvirt in memory: names, states and the XML each domain was defined with. */
export class FakeHypervisor implements Hypervisor {
  domains = new Map<string, {xml: string; state: DomainState}>()
  calls: string[] = []
  /** Refuse definitions as the real adapter does when virsh fails (VIRSH_FAILED). */
  failDefine = false
  /** Runs when a definition is asked, before it is taken or refused: what happens meanwhile. */
  onDefine?: () => Promise<void>
  failStart = false
  /** Whether a guest obeys the ACPI power button (a guest without acpid, or hung, does not). */
  obeysShutdown = true

  async listNames() {
    return [...this.domains.keys()]
  }
  async listActive() {
    return [...this.domains].filter(([, d]) => ACTIVE(d.state)).map(([n]) => n)
  }
  async state(name: string) {
    return this.domains.get(name)?.state
  }
  async define(xml: string) {
    this.calls.push('define')
    await this.onDefine?.()
    if (this.failDefine) throw new ShienError('libvirt could not define the domain: libvirt said no.', {code: 'VIRSH_FAILED', exit: 'remote'})
    const name = /<name>([^<]+)<\/name>/.exec(xml)![1]
    this.domains.set(name, {xml, state: this.domains.get(name)?.state ?? 'shut off'})
    return {domain: name}
  }
  async start(name: string, o: {paused?: boolean}) {
    this.calls.push(`start ${name}${o.paused ? ' --paused' : ''}`)
    if (this.failStart) throw new ShienError('libvirt could not start it', {code: 'VIRSH_FAILED', exit: 'remote'})
    this.domains.get(name)!.state = o.paused ? 'paused' : 'running'
  }
  async shutdown(name: string) {
    this.calls.push(`shutdown ${name}`)
    if (this.obeysShutdown) this.domains.get(name)!.state = 'shut off'
  }
  async destroy(name: string) {
    this.calls.push(`destroy ${name}`)
    this.domains.get(name)!.state = 'shut off'
  }
  async undefine(name: string) {
    this.calls.push(`undefine ${name}`)
    this.domains.delete(name)
  }
  async dumpXml(name: string, o: DumpOptions = {}) {
    const xml = this.domains.get(name)!.xml
    // Like libvirt: without --security-info, passwords are left out.
    return o.withSecrets ? xml : xml.replace(/ passwd='[^']*'/g, '')
  }
  async console(name: string) {
    this.calls.push(`console ${name}`)
    return 0
  }
  /** 16 GiB, as `virsh nodeinfo` gives it. */
  memoryKiB = 16 * 1024 ** 2
  async nodeMemoryKiB() {
    return this.memoryKiB
  }
}

/** The image rules stubbed: accepts every slot unless told to refuse, and records grants. */
export class FakeImages implements ImageGate {
  refuse?: Error
  checked: string[] = []
  removed: string[] = []
  async check(slot: string): Promise<CheckedImage> {
    this.checked.push(slot)
    if (this.refuse) throw this.refuse
    return {slot, path: `/storage/users/e195701/images/${slot}.qcow2`, virtualSize: 2 ** 30, backingChain: []}
  }
  async removeImage(slot: string) {
    this.removed.push(slot)
    return [`/storage/users/e195701/images/${slot}.qcow2`]
  }
  /** What each slot's record says; x86_64 BIOS when unset. */
  platforms: Record<string, ImagePlatform> = {}
  async platform(slot: string): Promise<ImagePlatform> {
    return this.platforms[slot] ?? {arch: 'x86_64', firmware: 'bios'}
  }
}

/** UEFI stores in memory: which paths were made fresh and which were checked before a start. */
export class FakeNvram implements NvramStore {
  calls: string[] = []
  async reset(path: string, template: string) {
    this.calls.push(`reset ${path} ${template}`)
  }
  async ensure(path: string, template: string) {
    this.calls.push(`ensure ${path} ${template}`)
  }
}

/** A directory in memory, with the role rules of the real ones. */
export class FakeDirectory implements Directory {
  down = false
  asked: string[] = []
  constructor(
    public accounts: Record<string, DirectoryAccount>,
    private readonly roles = {admin: 'shien-admin', instructor: ['teachers'], student: ['students'] as readonly string[]},
  ) {}
  async standing(account: string): Promise<AccountStanding> {
    this.asked.push(account)
    if (this.down) throw new ShienError('Cannot get an answer from the account directory', {code: 'DIRECTORY_UNAVAILABLE', exit: 'remote'})
    const entry = this.accounts[account]
    return entry ? {entry, role: roleOf(entry.groups, this.roles)} : {}
  }
  async members(): Promise<DirectoryAccount[]> {
    return Object.values(this.accounts)
  }
}

/** Two students (k198584 also in the kernel group), an admin, and an alumnus without a role. */
function defaultDirectory(): FakeDirectory {
  return new FakeDirectory({
    e195701: {account: 'e195701', uid: 1001, gid: 1001, groups: ['students']},
    k198584: {account: 'k198584', uid: 1002, gid: 1002, groups: ['students', 'kernel']},
    admin1: {account: 'admin1', uid: 1003, gid: 1003, groups: ['shien-admin']},
    nobody1: {account: 'nobody1', uid: 1004, gid: 1004, groups: ['alumni']},
  })
}

export const UIDS: Record<string, number> = {e195701: 1001, k198584: 1002, admin1: 1003, nobody1: 1004}

/** ie-virsh's main() on fakes, with a real storage folder and configuration file. */
export class Harness {
  root = ''
  hv = new FakeHypervisor()
  images = new FakeImages()
  nvram = new FakeNvram()
  /** An x86_64 blade without KVM, with both emulators, unless a test says otherwise. */
  host: HostFacts = {machine: 'x86_64', kvm: false, emulator: () => true}
  directory = defaultDirectory()
  isTty = true
  /** The uids let through libvirt's state folder, in order. */
  admitted: number[] = []
  out: string[] = []
  err: string[] = []

  /** Fresh fakes, storage and configuration for each test. */
  async setUp(config: Record<string, unknown> = {}): Promise<void> {
    this.hv = new FakeHypervisor()
    this.images = new FakeImages()
    this.nvram = new FakeNvram()
    this.host = {machine: 'x86_64', kvm: false, emulator: () => true}
    this.directory = defaultDirectory()
    this.isTty = true
    this.admitted = []
    this.root = await mkdtemp(join(tmpdir(), 'shien-cmd-'))
    for (const account of Object.keys(UIDS)) await mkdir(join(this.root, 'users', account, 'images'), {recursive: true})
    await this.writeConfig(config)
  }

  async writeConfig(config: Record<string, unknown>): Promise<void> {
    const base = {
      storageRoot: this.root,
      templatesDir: join(this.root, 'no-admin-templates'),
      sshPortPool: {from: 22000, to: 22002},
      debugSocketDir: join(this.root, 'run', 'debug'),
      runDir: join(this.root, 'run'),
      listenAddress: '0.0.0.0',
      limits: {default: {vms: 4, vcpus: 1, memoryMiB: 256}},
    }
    await writeFile(join(this.root, 'config.json'), JSON.stringify({...base, ...config}), {mode: 0o644})
  }

  async tearDown(): Promise<void> {
    await rm(this.root, {recursive: true, force: true})
  }

  /** main() as `uid` (a number: SUDO_UID; realUid 0 unless `realUid` says otherwise), with `stdin` for admit. */
  run(argv: string[], uid: string | number = 1001, o: {stdin?: Readable; realUid?: number} = {}): Promise<number> {
    this.out = []
    this.err = []
    const deps: MainDeps = {
      stdin: o.stdin,
      configPath: join(this.root, 'config.json'),
      env: {SUDO_UID: String(uid)},
      realUid: o.realUid ?? 0,
      lookupAccount: async (n) => Object.entries(UIDS).find(([, u]) => u === n)?.[0],
      lookupUid: async (account) => UIDS[account],
      lookupGid: async (uid) => uid,
      directory: () => this.directory,
      hypervisor: () => this.hv,
      imageGate: () => this.images,
      nvram: () => this.nvram,
      host: () => this.host,
      domainType: async () => 'qemu',
      admitQemu: async (_dir, owner) => {
        this.admitted.push(owner.uid)
      },
      hostname: 'blade1',
      isTty: this.isTty,
      stdout: (t) => this.out.push(t),
      stderr: (t) => this.err.push(t),
    }
    return main(argv, deps)
  }

  json(): any {
    return JSON.parse(this.out.join(''))
  }

  portFiles(pool: 'ssh' = 'ssh'): Promise<string[]> {
    return readdir(join(this.root, 'ports', pool))
      .then((names) => names.filter((n) => !n.startsWith('.')).sort())
      .catch(() => [] as string[])
  }
}
