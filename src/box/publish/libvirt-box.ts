import {createHash} from 'node:crypto'
import {createReadStream, createWriteStream} from 'node:fs'
import {stat} from 'node:fs/promises'
import {Transform} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import tar from 'tar-stream'

import {QemuImgError, qemuImgConvert, qemuImgInfo} from '../../qemu-img/qemu-img.js'
import {ShienError} from '../../errors.js'
import {readBoxEntries} from '../box-tar.js'

/** What vagrant-libvirt reads from a box's metadata.json. */
export interface LibvirtMetadata {
  provider: 'libvirt'
  format: 'qcow2'
  /** GiB, rounded up: vagrant-libvirt refuses a domain disk smaller than this. */
  virtual_size: number
}

const GIB = 2 ** 30
// A fixed time, so the same qcow2 always packs into the same bytes.
const MTIME = new Date('2000-01-01T00:00:00Z')

/**
 * Copies the disk entry (a VMDK the gate accepted) out of the box, and the box's Vagrantfile
 * text when it has one, in one pass over the archive.
 */
export async function extractDisk(box: string, diskEntry: string, dest: string, signal?: AbortSignal): Promise<{vagrantfile?: string}> {
  let vagrantfile: string | undefined
  await readBoxEntries(box, {
    signal,
    onEntry: async (entry, body) => {
      if (entry.name === diskEntry) await pipeline(body, createWriteStream(dest, {mode: 0o600}), {signal})
      else if (entry.name === 'Vagrantfile' && entry.size < 1024 * 1024) {
        const chunks: Buffer[] = []
        for await (const chunk of body) chunks.push(chunk as Buffer)
        vagrantfile = Buffer.concat(chunks).toString('utf8')
      }
    },
  })
  return {vagrantfile}
}

/**
 * Converts as vagrant-mutate does for libvirt: `-f vmdk` always (never probe), 16 KiB sparse
 * detection, qcow2 compat 1.1. Progress is qemu-img's own percentage.
 */
export async function convertToQcow2(vmdk: string, qcow2: string, opts: {signal?: AbortSignal; onProgress?: (percent: number) => void}): Promise<LibvirtMetadata> {
  await qemuImgConvert({
    src: vmdk, srcFormat: 'vmdk', dest: qcow2, destFormat: 'qcow2', sparse: '16k', options: ['compat=1.1'],
    signal: opts.signal, onPercent: opts.onProgress, env: 'user',
  }).catch((error: unknown) => {
    if (!(error instanceof QemuImgError)) throw error
    opts.signal?.throwIfAborted()
    const full = error.failure === 'disk-full'
    throw new ShienError(`qemu-img could not convert the box's disk to qcow2: ${error.line}`, {
      code: full ? 'PUBLISH_DISK_FULL' : 'CONVERT_FAILED', exit: full ? 'remote' : 'badInput',
      suggestions: full ? ['Free space in TMPDIR (the disk is converted there), or point TMPDIR elsewhere.'] : ['Check the box with shien box inspect.'],
    })
  })
  const [info] = await qemuImgInfo(qcow2, {format: 'qcow2', signal: opts.signal, env: 'user'})
  return {provider: 'libvirt', format: 'qcow2', virtual_size: Math.ceil(info.virtualSize / GIB)}
}

/**
 * The Vagrantfile of the libvirt box: the provider settings vagrant-libvirt boxes carry
 * (virtio, as the blades run it), then the source box's own Vagrantfile, whose
 * provider-neutral settings (synced folders, ssh) apply to both providers.
 */
export function libvirtVagrantfile(source: string | undefined): string {
  const own = [
    '# libvirt settings, written by shien box publish.',
    'Vagrant.configure("2") do |config|',
    '  config.vm.provider :libvirt do |libvirt|',
    '    libvirt.driver = "kvm"',
    '    libvirt.disk_bus = "virtio"',
    '    libvirt.nic_model_type = "virtio"',
    '  end',
    'end',
    '',
  ].join('\n')
  return source ? `${own}\n# The VirtualBox box's own Vagrantfile:\n${source.endsWith('\n') ? source : `${source}\n`}` : own
}

/** Packs metadata.json, Vagrantfile and box.img (in vagrant-libvirt's order) into a plain tar; returns its sha256. */
export async function packLibvirtBox(qcow2: string, metadata: LibvirtMetadata, vagrantfile: string, dest: string, signal?: AbortSignal): Promise<string> {
  const pack = tar.pack()
  const header = (name: string, size: number) => ({name, size, mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime: MTIME})
  const hash = createHash('sha256')
  const hasher = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk)
      callback(null, chunk)
    },
  })
  const writing = pipeline(pack, hasher, createWriteStream(dest, {mode: 0o600}), {signal})
  const add = async () => {
    for (const [name, text] of [['metadata.json', JSON.stringify(metadata) + '\n'], ['Vagrantfile', vagrantfile]]) {
      pack.entry(header(name, Buffer.byteLength(text)), text)
    }
    const size = (await stat(qcow2)).size
    const sink = pack.entry(header('box.img', size))
    await pipeline(createReadStream(qcow2), sink, {signal})
    pack.finalize()
  }
  await Promise.all([add().catch((error: unknown) => pack.destroy(error as Error)), writing])
  return hash.digest('hex')
}
