import {createHash} from 'node:crypto'
import {createReadStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pipeline} from 'node:stream/promises'

import {execa} from 'execa'
import ssh2 from 'ssh2'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {REPO_ROOT, runShien, startShien} from '../support/cli.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {testBoxPath} from '../support/test-box.js'
import {makeBox, tempDir} from '../support/make-box.js'
import {clearSlot, definedDomains, ieVirshAs} from '../support/virsh.js'
import {GUESTFS_ENV} from '../support/guest-image.js'

const SLOT = '03'
const INSECURE = join(REPO_ROOT, 'test/fixtures/vagrant-insecure')

let blade: LocalBlade
let box: string
let boxSha: string
let domain: string
let sshPort: number
let keyDir: string
let alias: string
let savedKnownHosts: string
/** Bytes on the blade after the last interruption. */
let partSize = 0
/** The uploader's request size: a resume re-sends at most one partly written chunk. */
const CHUNK = 256 * 1024

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(path), hash)
  return hash.digest('hex')
}

/** Starts a push and cuts it (SIGINT or SIGKILL) once the upload has passed `percent`. */
async function interruptedPush(percent: number, signal: NodeJS.Signals) {
  const child = startShien(['push', box, '--host', 'blade', '--slot', SLOT, '--name', 'e2e'], {home: blade.laptopHome})
  let cut = false
  child.stderr?.on('data', (chunk: Buffer) => {
    const seen = [...chunk.toString().matchAll(/^ {2}(\d+)%/gm)].map((m) => Number(m[1]))
    if (!cut && seen.some((p) => p >= percent)) {
      cut = true
      child.kill(signal)
    }
  })
  const result = await child
  return {cut, exitCode: result.exitCode, stderr: String(result.stderr)}
}

function sshArgs(key: string, user = 'vagrant'): string[] {
  return ['-i', key, '-p', String(sshPort), '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no',
    '-o', `UserKnownHostsFile=/dev/null`, '-o', 'PubkeyAcceptedAlgorithms=+ssh-rsa', '-o', 'ConnectTimeout=10', `${user}@127.0.0.1`]
}

async function passwordLogin(user: string, password: string): Promise<'accepted' | 'refused'> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client()
    client.once('ready', () => {
      client.end()
      resolve('accepted')
    })
    client.once('error', (error: Error & {level?: string}) => {
      if (error.level === 'client-authentication') resolve('refused')
      else reject(error)
    })
    client.connect({host: '127.0.0.1', port: sshPort, username: user, password, tryKeyboard: true, readyTimeout: 30_000,
      hostVerifier: () => true} as never)
    client.on('keyboard-interactive', (_n, _i, _l, _p, finish) => finish([password]))
  })
}

async function hostKeyOf(port: number): Promise<string> {
  const {stdout} = await execa('ssh-keyscan', ['-t', 'ed25519', '-p', String(port), '127.0.0.1'])
  return stdout.trim().split(/\s+/).at(-1)!
}

/** The ed25519 host key baked into the box, read from the box's own disk. */
async function boxHostKey(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'boxkey-'))
  try {
    await execa('tar', ['-xf', box, '-C', dir, 'box-disk001.vmdk'])
    const {stdout} = await execa('guestfish', ['--ro', '-a', join(dir, 'box-disk001.vmdk'), '-i', 'cat', '/etc/ssh/ssh_host_ed25519_key.pub'], {
      env: GUESTFS_ENV,
    })
    return stdout.trim().split(/\s+/)[1]
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

/**
 * The slot as files: the image's inode (a replaced image is a new file) and the harden record.
 * Not the image's bytes: the running guest writes to its disk.
 */
function slotFiles() {
  const images = join(blade.storageRoot, 'users', blade.account, 'images')
  return {
    inode: statSync(join(images, `${SLOT}.qcow2`)).ino,
    record: readFileSync(join(images, `${SLOT}.json`), 'utf8'),
    staged: readdirSync(images).filter((f) => f.startsWith(`.${SLOT}`)),
  }
}

async function waitForSsh(key: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < deadline) {
    const r = await execa('ssh', [...sshArgs(key), 'true'], {reject: false})
    if (r.exitCode === 0) return
    last = String(r.stderr)
    await new Promise((f) => setTimeout(f, 5000))
  }
  throw new Error(`The VM's sshd did not let the student in within ${timeoutMs / 1000} s: ${last}`)
}

beforeAll(async () => {
  blade = await ensureLocalBlade()
  box = await testBoxPath()
  boxSha = await sha256(box)
  domain = `${blade.account}-${SLOT}`
  alias = `shien-${blade.account}-${SLOT}.${blade.host}-${blade.port}`
  savedKnownHosts = readFileSync(blade.knownHosts, 'utf8')
  keyDir = mkdtempSync(join(tmpdir(), 'keys-'))
  for (const name of ['vagrant.key.rsa', 'vagrant.key.ed25519']) {
    await execa('install', ['-m', '0600', join(INSECURE, name), join(keyDir, name)])
  }
  await clearSlot(blade.account, SLOT)
  rmSync(join(blade.storageRoot, 'users', blade.account, 'incoming', 'e2e.box.part'), {force: true})
}, 900_000)

afterAll(async () => {
  if (!blade) return
  await clearSlot(blade.account, SLOT)
  writeFileSync(blade.knownHosts, savedKnownHosts)
})

const aliasLines = () => readFileSync(blade.knownHosts, 'utf8').split('\n').filter((l) => l.startsWith(`${alias} `))
const otherLines = () => readFileSync(blade.knownHosts, 'utf8').split('\n').filter((l) => !l.startsWith(`${alias} `))
/** `shien vm ssh SLOT -- id -un` as a student types it (no --json), stdin not a terminal. */
const vmSsh = () => runShien(['vm', 'ssh', SLOT, '--host', 'blade', '--', 'id', '-un'], {home: blade.laptopHome})

describe('shien push, end to end on the local blade', () => {
  it('resumes after three interruptions and never defines a partial image', async () => {
    const part = join(blade.storageRoot, 'users', blade.account, 'incoming', 'e2e.box.part')
    for (const [percent, signal] of [[20, 'SIGINT'], [50, 'SIGKILL'], [80, 'SIGINT']] as const) {
      const run = await interruptedPush(percent, signal)
      expect(run.cut, run.stderr).toBe(true)
      if (signal === 'SIGINT') {
        // Ctrl-C during the upload is the interruption, with the resume named: never a fault of the blade.
        expect(run.exitCode, run.stderr).toBe(130)
        expect(run.stderr).toMatch(/Error \(CANCELLED\): Interrupted during upload: the \d+\.\d MiB sent \(\d+%\) stay on the blade and are not sent again\./)
        expect(run.stderr).toContain('a push resumes where it stopped')
        expect(run.stderr).not.toMatch(/UPLOAD_FAILED|admin provision/)
      } else {
        expect(run.exitCode).not.toBe(0)
      }
      expect(existsSync(part)).toBe(true)
      partSize = statSync(part).size
      expect(await definedDomains()).not.toContain(domain)
      expect(existsSync(join(blade.storageRoot, 'users', blade.account, 'images', `${SLOT}.qcow2`))).toBe(false)
    }
  }, 600_000)

  it('pushes the real box through every stage, starts the VM and records its new host keys under its alias', async () => {
    const others = otherLines()
    const run = await runShien(['push', box, '--host', 'blade', '--slot', SLOT, '--name', 'e2e', '--json'], {home: blade.laptopHome})
    expect(run.exitCode, run.stderr + run.stdout).toBe(0)
    const result = run.json
    expect(result.vm).toBe(domain)
    expect(result.box.sha256).toBe(boxSha)
    expect(result.box.resumedFrom).toBeGreaterThan(0)
    expect(result.box.sent).toBeLessThan(result.box.size - partSize + CHUNK)
    expect(result.timings.map((t: {stage: string}) => t.stage)).toEqual(['package', 'upload', 'convert', 'harden', 'define', 'start'])
    expect(await definedDomains()).toContain(domain)
    sshPort = Number(/-p (\d+)/.exec(result.ssh)![1])
    const record = JSON.parse(readFileSync(join(blade.storageRoot, 'users', blade.account, 'images', `${SLOT}.json`), 'utf8'))
    expect(record.boxSha256).toBe(boxSha)
    // The keys harden made, in known_hosts under the VM's own alias, no other line touched.
    expect(result.hostKeys).toMatchObject({recorded: true, alias, path: blade.knownHosts, keys: 3})
    expect(result.login).toBe(`shien vm ssh ${SLOT}`)
    expect(result.ssh).toContain(`HostKeyAlias=${alias}`)
    expect(result.ssh).not.toContain('[127.0.0.1]')
    expect(aliasLines()).toHaveLength(3)
    expect(otherLines()).toEqual(others)
  }, 900_000)

  it('lets the student in with their own key and nothing else', async () => {
    await waitForSsh(blade.identityFile, 300_000)
    const who = await execa('ssh', [...sshArgs(blade.identityFile), 'id -un; sudo -n true && echo sudo-ok'])
    expect(who.stdout.split('\n')).toEqual(['vagrant', 'sudo-ok'])
    for (const insecure of ['vagrant.key.rsa', 'vagrant.key.ed25519']) {
      const r = await execa('ssh', [...sshArgs(join(keyDir, insecure)), 'true'], {reject: false})
      expect(r.exitCode, `${insecure} must be refused`).toBe(255)
      expect(String(r.stderr)).toMatch(/Permission denied/)
    }
    expect(await passwordLogin('vagrant', 'vagrant')).toBe('refused')
    expect(await passwordLogin('root', 'vagrant')).toBe('refused')
    expect(await hostKeyOf(sshPort)).not.toBe(await boxHostKey())
  }, 600_000)

  it('logs in through shien vm ssh with no question and no warning, and refuses a tampered entry for the alias', async () => {
    const r = await vmSsh()
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout.trim()).toBe('vagrant')
    expect(r.stderr).not.toMatch(/authenticity|warning|changed|added/i)
    const block = await runShien(['vm', 'ssh-config', SLOT, '--host', 'blade', '--json'], {home: blade.laptopHome})
    expect(block.json).toMatchObject({host: alias, hostKeyAlias: alias, port: sshPort, user: 'vagrant', proxyJump: 'blade', userKnownHostsFile: blade.knownHosts})

    const good = readFileSync(blade.knownHosts, 'utf8')
    const {public: attacker} = ssh2.utils.generateKeyPairSync('ed25519')
    writeFileSync(blade.knownHosts, [...otherLines().filter((l) => l.length > 0), `${alias} ${attacker.split(' ').slice(0, 2).join(' ')}`, ''].join('\n'))
    try {
      const tampered = await vmSsh()
      expect(tampered.exitCode).toBe(255)
      expect(tampered.stdout).toBe('')
      expect(tampered.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/)
      // The entry that was there is not replaced behind the student's back.
      expect(aliasLines()).toHaveLength(1)
    } finally {
      writeFileSync(blade.knownHosts, good)
    }
  }, 120_000)

  it('refuses a second push to the slot without --replace, and changes nothing', async () => {
    const before = slotFiles()
    const run = await runShien(['push', box, '--host', 'blade', '--slot', SLOT, '--name', 'e2e', '--json'], {home: blade.laptopHome})
    expect(run.exitCode).toBe(6)
    expect(run.json.error.code).toBe('SLOT_DEFINED')
    expect(run.json.error.suggestions.join(' ')).toContain('--replace')
    expect(slotFiles()).toEqual(before)
  }, 300_000)

  it('keeps the running VM and its image when a --replace push fails half way', async () => {
    const before = slotFiles()
    const {dir, cleanup} = await tempDir()
    try {
      // A box whose disk has no operating system: it uploads and converts, then harden refuses it.
      const broken = await makeBox(dir, 'no-os.box', {})
      const run = await runShien(['push', broken, '--host', 'blade', '--slot', SLOT, '--replace', '--json'], {home: blade.laptopHome})
      expect(run.exitCode).toBe(3)
      expect(run.json.error.code).toBe('HARDEN_NO_OS')
    } finally {
      await cleanup()
    }
    expect(slotFiles()).toEqual(before)
    const list = JSON.parse(String((await ieVirshAs(blade.account, ['list', '--json'])).stdout))
    expect(list.domains.find((d: {slot: string}) => d.slot === SLOT)?.state).toBe('running')
    await waitForSsh(blade.identityFile, 60_000)
  }, 300_000)

  it('shuts the VM down with shien vm stop (ACPI), without destroying it', async () => {
    const r = await runShien(['vm', 'stop', SLOT, '--host', 'blade', '--timeout', '180', '--json'], {home: blade.laptopHome})
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.json).toMatchObject({name: domain, slot: SLOT, state: 'shut off', outcome: 'shutdown', timeoutSeconds: 180})
    expect((await execa('virsh', ['-c', 'qemu:///system', 'domstate', domain])).stdout.trim()).toBe('shut off')
    const again = await runShien(['vm', 'stop', SLOT, '--host', 'blade', '--json'], {home: blade.laptopHome})
    expect(again.json).toMatchObject({outcome: 'not-running'})
  }, 300_000)
})
