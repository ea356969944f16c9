// Published catalogs as students use them: real Vagrant 2.3 and vagrant-libvirt (Debian
// packages) adding boxes over HTTP (a local server and nginx with templates/nginx-boxes.conf)
// and file://, seeing new versions, and refusing a corrupted box by its checksum.
import {spawn, type ChildProcess} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {REPO_ROOT, runShien} from '../support/cli.js'
import {serveDirectory, type StaticServer} from '../support/http-server.js'
import {makeBox, readTar, tempDir} from '../support/make-box.js'

let dir: string
let cleanup: () => Promise<void>
let home: string
let box: string
let server: StaticServer
const httpRoot = () => join(dir, 'http')

beforeAll(async () => {
  ;({dir, cleanup} = await tempDir())
  home = join(dir, 'home')
  mkdirSync(home)
  box = await makeBox(dir, 'course.box')
  mkdirSync(httpRoot())
  server = await serveDirectory(httpRoot())
})
afterAll(async () => {
  await server?.close()
  await cleanup()
})

async function publish(args: string[], name = 'os101/debian12', file = box) {
  const run = await runShien(['box', 'publish', file, '--name', name, ...args, '--json'], {home})
  expect(run.exitCode, run.stdout + run.stderr).toBe(0)
  return run.json
}

/** Vagrant with a VAGRANT_HOME of its own, as a student's laptop. */
function vagrant(vagrantHome: string, args: string[]) {
  return execa('vagrant', args, {
    env: {VAGRANT_HOME: vagrantHome, VAGRANT_CHECKPOINT_DISABLE: '1', VAGRANT_NO_COLOR: '1'},
    reject: false, all: true, stdin: 'ignore', cwd: vagrantHome,
  })
}

const newHome = () => mkdtempSync(join(dir, 'vagrant-home-'))

describe('a catalog served over HTTP', () => {
  it('is added by vagrant box add for both providers, and a second version shows as outdated', async () => {
    const catalogUrl = `${server.url}/os101/debian12.json`
    const result = await publish(['--version', '2026.1.0', '--to', httpRoot(), '--base-url', server.url])
    expect(result.catalog.url).toBe(catalogUrl)
    const vagrantHome = newHome()
    for (const provider of ['virtualbox', 'libvirt']) {
      const add = await vagrant(vagrantHome, ['box', 'add', catalogUrl, '--provider', provider])
      expect(add.exitCode, add.all).toBe(0)
      expect(add.all).toContain(`Successfully added box 'os101/debian12' (v2026.1.0) for '${provider}'!`)
    }
    const list = await vagrant(vagrantHome, ['box', 'list'])
    expect(list.stdout.split('\n').sort()).toEqual(['os101/debian12 (libvirt, 2026.1.0)', 'os101/debian12 (virtualbox, 2026.1.0)'])
    const libvirtDir = join(vagrantHome, 'boxes/os101-VAGRANTSLASH-debian12/2026.1.0/libvirt')
    expect(JSON.parse(readFileSync(join(libvirtDir, 'metadata.json'), 'utf8'))).toEqual({provider: 'libvirt', format: 'qcow2', virtual_size: 1})
    expect(readFileSync(join(libvirtDir, 'box.img')).subarray(0, 4).toString('latin1')).toBe('QFI\xfb')

    const second = await publish(['--version', '2026.2.0', '--to', httpRoot(), '--base-url', server.url])
    expect(second.versions).toEqual(['2026.1.0', '2026.2.0'])
    const outdated = await vagrant(vagrantHome, ['box', 'outdated', '--global'])
    expect(outdated.exitCode, outdated.all).toBe(0)
    for (const provider of ['virtualbox', 'libvirt']) {
      expect(outdated.all).toContain(`* 'os101/debian12' for '${provider}' is outdated! Current: 2026.1.0. Latest: 2026.2.0`)
    }
    const update = await vagrant(vagrantHome, ['box', 'update', '--box', 'os101/debian12', '--provider', 'libvirt'])
    expect(update.exitCode, update.all).toBe(0)
    expect((await vagrant(vagrantHome, ['box', 'list'])).stdout).toContain('os101/debian12 (libvirt, 2026.2.0)')
  })

  it('holds amd64 and arm64 boxes in one version, and Vagrant 2.3 (which ignores architectures) adds the amd64 ones', async () => {
    const ovf = readFileSync(join(import.meta.dirname, '../fixtures/vbox71/box-arm64.ovf'), 'utf8')
    const arm = await makeBox(dir, 'course-arm64.box', {ovf, metadata: {provider: 'virtualbox', architecture: 'arm64'}})
    await publish(['--version', '2026.1.0', '--to', httpRoot(), '--base-url', server.url], 'os101/multiarch')
    const armResult = await publish(['--version', '2026.1.0', '--to', httpRoot(), '--base-url', server.url], 'os101/multiarch', arm)
    expect(armResult.files.map((f: {url: string}) => f.url)).toEqual([
      `${server.url}/os101/multiarch/2026.1.0/virtualbox-arm64.box`, `${server.url}/os101/multiarch/2026.1.0/libvirt-arm64.box`,
    ])
    const catalogUrl = armResult.catalog.url
    const vagrantHome = newHome()
    server.requests.length = 0
    for (const provider of ['virtualbox', 'libvirt']) {
      const add = await vagrant(vagrantHome, ['box', 'add', catalogUrl, '--provider', provider])
      expect(add.exitCode, add.all).toBe(0)
      expect(add.all).toContain(`Successfully added box 'os101/multiarch' (v2026.1.0) for '${provider}'!`)
    }
    // Vagrant downloaded the amd64 files only, and stored the amd64 VirtualBox box as it was published.
    const boxGets = server.requests.filter((r) => r.path.endsWith('.box')).map((r) => r.path)
    expect(boxGets).toEqual(['/os101/multiarch/2026.1.0/virtualbox.box', '/os101/multiarch/2026.1.0/libvirt.box'])
    const stored = join(vagrantHome, 'boxes/os101-VAGRANTSLASH-multiarch/2026.1.0/virtualbox')
    const hash = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')
    const published = await readTar(readFileSync(box))
    for (const name of ['box.ovf', 'box-disk001.vmdk']) {
      expect(hash(readFileSync(join(stored, name))), name).toBe(hash(published.find((e) => e.name === name)!.body))
    }
    expect(readFileSync(join(stored, 'box.ovf'), 'utf8')).not.toContain('architecture="ARM"')
    expect(JSON.parse(readFileSync(join(stored, 'metadata.json'), 'utf8'))).toEqual({provider: 'virtualbox'})

    const verify = await runShien(['box', 'verify', catalogUrl, '--json'], {home})
    expect(verify.exitCode, verify.stderr).toBe(0)
    expect(verify.json.boxes).toHaveLength(4)

    // Why the default entry comes last: with the amd64 entries first, Vagrant 2.3 takes the arm64 box.
    const catalog = JSON.parse(readFileSync(join(httpRoot(), 'os101/multiarch.json'), 'utf8'))
    catalog.name = 'os101/reversed'
    catalog.versions[0].providers.reverse()
    mkdirSync(join(httpRoot(), 'os101'), {recursive: true})
    writeFileSync(join(httpRoot(), 'os101/reversed.json'), JSON.stringify(catalog))
    server.requests.length = 0
    const reversed = await vagrant(newHome(), ['box', 'add', `${server.url}/os101/reversed.json`, '--provider', 'virtualbox'])
    expect(reversed.exitCode, reversed.all).toBe(0)
    expect(server.requests.filter((r) => r.path.endsWith('.box')).map((r) => r.path)).toEqual(['/os101/multiarch/2026.1.0/virtualbox-arm64.box'])
  })

  it('is verified by shien box verify reading each box once', async () => {
    for (const version of ['1.0.0', '1.1.0']) await publish(['--version', version, '--to', httpRoot(), '--base-url', server.url], 'os101/verified')
    server.requests.length = 0
    const run = await runShien(['box', 'verify', `${server.url}/os101/verified.json`, '--json'], {home})
    expect(run.exitCode, run.stderr).toBe(0)
    expect(run.json.boxes).toHaveLength(4)
    const boxGets = server.requests.filter((r) => r.path.endsWith('.box'))
    expect(boxGets.map((r) => r.path).sort()).toEqual([...new Set(boxGets.map((r) => r.path))].sort())
    expect(boxGets.every((r) => r.method === 'GET' && r.complete)).toBe(true)
    expect(boxGets).toHaveLength(4)
  })

  it('must be served as application/json: otherwise Vagrant fails, and shien box verify says why', async () => {
    const {catalog} = await publish(['--version', '1.0.0', '--to', httpRoot(), '--base-url', server.url, '--no-libvirt'], 'os101/mistyped')
    server.jsonType = 'text/plain'
    try {
      const add = await vagrant(newHome(), ['box', 'add', '--name', 'os101/mistyped', catalog.url])
      expect(add.exitCode).not.toBe(0)
      expect(add.all).toContain('Unrecognized archive format')
      const verify = await runShien(['box', 'verify', catalog.url], {home})
      expect(verify.exitCode).toBe(3)
      expect(verify.stderr).toContain('Error (CATALOG_CONTENT_TYPE)')
      expect(verify.stderr).toContain('is served as "text/plain", not application/json')
    } finally {
      server.jsonType = 'application/json'
    }
  })
})

describe('a catalog in a shared folder (file:// URLs)', () => {
  it('is added for both providers, and the course project sees a new version as outdated', async () => {
    const root = join(dir, 'shared')
    const first = await publish(['--version', '2026.1.0', '--to', root])
    expect(first.catalog.url).toBe(`file://${root}/os101/debian12.json`)
    const vagrantHome = newHome()
    for (const provider of ['virtualbox', 'libvirt']) {
      const add = await vagrant(vagrantHome, ['box', 'add', first.catalog.url, '--provider', provider])
      expect(add.exitCode, add.all).toBe(0)
    }
    expect((await vagrant(vagrantHome, ['box', 'list'])).stdout).toContain('os101/debian12 (virtualbox, 2026.1.0)')
    await publish(['--version', '2026.1.1', '--to', root])
    const outdated = await vagrant(vagrantHome, ['box', 'outdated', '--global'])
    expect(outdated.all).toContain("* 'os101/debian12' for 'virtualbox' is outdated! Current: 2026.1.0. Latest: 2026.1.1")
    // The course Vagrantfile names the catalog with box_url; libvirt is the provider installed here.
    const project = join(vagrantHome, 'project')
    mkdirSync(project)
    writeFileSync(join(project, 'Vagrantfile'), `Vagrant.configure("2") do |config|\n  config.vm.box = "os101/debian12"\n  config.vm.box_url = "${first.catalog.url}"\nend\n`)
    const inProject = await execa('vagrant', ['box', 'outdated'], {
      cwd: project, reject: false, all: true, stdin: 'ignore',
      env: {VAGRANT_HOME: vagrantHome, VAGRANT_CHECKPOINT_DISABLE: '1', VAGRANT_NO_COLOR: '1', VAGRANT_DEFAULT_PROVIDER: 'libvirt'},
    })
    expect(inProject.exitCode, inProject.all).toBe(0)
    expect(inProject.all.replaceAll('\n', ' ')).toContain("A newer version of the box 'os101/debian12' for provider 'libvirt' is available! You currently have version '2026.1.0'. The latest is version '2026.1.1'.")
  })
})

describe('a corrupted box', () => {
  it('is refused by Vagrant\'s checksum check, and by shien box verify', async () => {
    const root = join(dir, 'corrupt')
    const result = await publish(['--version', '2026.1.0', '--to', root, '--no-libvirt'])
    const file = result.files[0].path
    const bytes = readFileSync(file)
    bytes[600] ^= 0x20 // inside the Vagrantfile text: still a valid archive
    writeFileSync(file, bytes)
    const vagrantHome = newHome()
    const add = await vagrant(vagrantHome, ['box', 'add', result.catalog.url])
    expect(add.exitCode).not.toBe(0)
    expect(add.all).toContain('The checksum of the downloaded box did not match the expected')
    expect((await vagrant(vagrantHome, ['box', 'list'])).stdout).not.toContain('os101/debian12')
    const verify = await runShien(['box', 'verify', result.catalog.url], {home})
    expect(verify.exitCode).toBe(3)
    expect(verify.stderr).toContain('Error (CHECKSUM_MISMATCH)')
  })
})

describe('templates/nginx-boxes.conf', () => {
  let nginx: ChildProcess | undefined
  afterAll(() => {
    nginx?.kill('SIGQUIT')
  })

  it('serves catalogs as application/json to real Vagrant, and keeps qcow2 bases and hidden files private', async () => {
    const prefix = join(dir, 'nginx')
    const storage = join(dir, 'storage')
    mkdirSync(join(prefix, 'tmp'), {recursive: true})
    const port = await freePort()
    const base = `http://127.0.0.1:${port}/boxes`
    const result = await publish(['--version', '2026.1.0', '--to', join(storage, 'boxes'), '--base-url', base])
    const snippet = readFileSync(join(REPO_ROOT, 'templates/nginx-boxes.conf'), 'utf8').replace('root /gfs2/shien;', `root ${storage};`)
    writeFileSync(join(prefix, 'boxes.conf'), snippet)
    writeFileSync(join(prefix, 'nginx.conf'), nginxConf(prefix, port))
    nginx = spawn('nginx', ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', join(prefix, 'error.log')], {stdio: 'ignore'})
    await waitForPort(port)
    const head = await fetch(result.catalog.url, {method: 'HEAD'})
    expect(head.headers.get('content-type')).toBe('application/json')
    expect((await fetch(`${base}/os101/debian12/2026.1.0/libvirt.qcow2`)).status).toBe(403)
    expect((await fetch(`${base}/os101/.debian12.json.lock`)).status).toBe(403)
    const vagrantHome = newHome()
    const add = await vagrant(vagrantHome, ['box', 'add', result.catalog.url, '--provider', 'libvirt'])
    expect(add.exitCode, add.all).toBe(0)
    expect(add.all).toContain("Successfully added box 'os101/debian12' (v2026.1.0) for 'libvirt'!")
  })
})

/** A minimal nginx.conf: no mime.types, so only the snippet decides Content-Types. */
function nginxConf(prefix: string, port: number): string {
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${prefix}/tmp/${t};`).join('\n')
  return `# The tests run as root and the published files are in a private temp folder.
user root;
daemon off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log;
events { worker_connections 64; }
http {
  access_log off;
${temp}
  server {
    listen 127.0.0.1:${port};
    include ${prefix}/boxes.conf;
  }
}
`
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const {port} = probe.address() as {port: number}
      probe.close(() => resolve(port))
    })
  })
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await fetch(`http://127.0.0.1:${port}/`).then(() => true, () => false)) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`nginx did not listen on ${port}; see its error.log`)
}

