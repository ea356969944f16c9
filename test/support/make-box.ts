// Builds small real Vagrant boxes (tar or tar.gz) for tests: valid ones with qemu-img VMDKs,
// and invalid ones with unsafe entries, private keys or hostile disks.
import {execFile} from 'node:child_process'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {promisify} from 'node:util'
import {gzipSync} from 'node:zlib'
import tar from 'tar-stream'

const run = promisify(execFile)

/** One raw tar entry; anything tar-stream can write, including unsafe ones. */
export interface TarEntry {
  name: string
  body?: Buffer | string
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'fifo' | 'character-device' | 'block-device'
  linkname?: string
}

/** A disk to put in the box and list in the generated OVF. */
export interface DiskSpec {
  name: string
  bytes: Buffer
  /** Capacity written into the OVF (bytes); defaults to 1 MiB, the size makeVmdk uses. */
  capacityBytes?: number
}

export interface MakeBoxOptions {
  gzip?: boolean
  /** Disks; default: one streamOptimized VMDK "box-disk001.vmdk" from {@link makeVmdk}. */
  disks?: DiskSpec[]
  /** OVF text; default {@link makeOvf} for the disks; false leaves box.ovf out. */
  ovf?: string | false
  /** metadata.json content; default {"provider": "virtualbox"}; false leaves it out. */
  metadata?: Record<string, unknown> | string | false
  vagrantfile?: boolean
  /** Adds vagrant_private_key at the top level (true) or at this path. */
  privateKey?: boolean | string
  /** Prefix every name with "./" and start with a "./" directory, as `tar -C dir .` does. */
  dotSlash?: boolean
  /** Adds one unsafe entry of this kind. */
  unsafe?: 'symlink' | 'hardlink' | 'dotdot' | 'absolute' | 'fifo' | 'duplicate'
  /** Entries appended after the standard ones. */
  extra?: TarEntry[]
  /** Replaces the first disk with a text descriptor whose extent is this path (e.g. /etc/shadow). */
  textDescriptor?: string
}

/** A temp folder for one test file; call `cleanup` in afterAll. */
export async function tempDir(): Promise<{dir: string; cleanup: () => Promise<void>}> {
  const dir = await mkdtemp(join(tmpdir(), 'shien-box-'))
  return {dir, cleanup: () => rm(dir, {recursive: true, force: true})}
}

/** A real VMDK made by qemu-img from a small raw file with a recognisable pattern. */
export async function makeVmdk(dir: string, name: string, subformat: 'streamOptimized' | 'monolithicSparse' | 'monolithicFlat' = 'streamOptimized', sizeMiB = 1): Promise<string> {
  const raw = join(dir, `${name}.raw`)
  const data = Buffer.alloc(sizeMiB * 1024 * 1024)
  for (let i = 0; i < data.length; i += 4096) data.write(`shien test block ${i}`, i)
  await writeFile(raw, data)
  const out = join(dir, name)
  await run('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', `subformat=${subformat}`, raw, out])
  await rm(raw)
  return out
}

const defaultDisks = new Map<string, Promise<Buffer>>()

/** The streamOptimized VMDK "box-disk001.vmdk" boxes get by default, made once per folder. */
export function defaultDisk(dir: string): Promise<Buffer> {
  let disk = defaultDisks.get(dir)
  if (!disk) {
    // qemu-img writes the file's own name into the extent, so make it under the name it has in the box.
    disk = mkdir(join(dir, 'default-disk'), {recursive: true})
      .then(() => makeVmdk(join(dir, 'default-disk'), 'box-disk001.vmdk'))
      .then((path) => readFile(path))
    defaultDisks.set(dir, disk)
  }
  return disk
}

/** A text descriptor VMDK whose one extent points at `target`, as an attacker would write it. */
export function textDescriptorVmdk(target = '/etc/shadow', sectors = 2048): Buffer {
  return Buffer.from([
    '# Disk DescriptorFile', 'version=1', 'CID=12345678', 'parentCID=ffffffff', 'createType="monolithicFlat"', '',
    '# Extent description', `RW ${sectors} FLAT "${target}" 0`, '', 'ddb.adapterType = "ide"', '',
  ].join('\n'))
}

/** Options for {@link makeOvf}. */
export interface OvfSpec {
  name?: string
  cpus?: number
  memoryMiB?: number
  efi?: boolean
  /** Extra text inserted before <Envelope> (a DOCTYPE, for instance). */
  prolog?: string
  capacityUnits?: string
}

/** A minimal OVF laid out like a VirtualBox 6 export, one SATA controller holding the disks. */
export function makeOvf(disks: Array<{name: string; capacityBytes?: number}>, spec: OvfSpec = {}): string {
  const unit = spec.capacityUnits === undefined ? '' : ` ovf:capacityAllocationUnits="${spec.capacityUnits}"`
  const files = disks.map((d, i) => `<File ovf:id="file${i + 1}" ovf:href="${d.name}"/>`).join('\n    ')
  const diskLines = disks.map((d, i) => `<Disk ovf:capacity="${d.capacityBytes ?? 1048576}"${unit} ovf:diskId="vmdisk${i + 1}" ovf:fileRef="file${i + 1}" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>`).join('\n    ')
  const items = disks.map((_d, i) => `<Item><rasd:AddressOnParent>${i}</rasd:AddressOnParent><rasd:HostResource>/disk/vmdisk${i + 1}</rasd:HostResource><rasd:InstanceID>${10 + i}</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>`).join('\n      ')
  return `<?xml version="1.0"?>
${spec.prolog ?? ''}<Envelope ovf:version="1.0" xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vbox="http://www.virtualbox.org/ovf/machine">
  <References>
    ${files}
  </References>
  <DiskSection>
    ${diskLines}
  </DiskSection>
  <VirtualSystem ovf:id="${spec.name ?? 'test-vm'}">
    <OperatingSystemSection ovf:id="96"><Description>Debian_64</Description></OperatingSystemSection>
    <VirtualHardwareSection>
      <Item><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>${spec.cpus ?? 2}</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>MegaBytes</rasd:AllocationUnits><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>${spec.memoryMiB ?? 1024}</rasd:VirtualQuantity></Item>
      <Item><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceSubType>AHCI</rasd:ResourceSubType><rasd:ResourceType>20</rasd:ResourceType></Item>
      ${items}
    </VirtualHardwareSection>
    <vbox:Machine ovf:required="false" version="1.16-linux" name="${spec.name ?? 'test-vm'}" OSType="Debian_64">
      <Hardware><Memory RAMSize="${spec.memoryMiB ?? 1024}"/>${spec.efi ? '<Firmware type="EFI"/>' : ''}</Hardware>
    </vbox:Machine>
  </VirtualSystem>
</Envelope>
`
}

/** Packs entries into tar bytes with tar-stream, exactly as given (no checks). */
export async function packTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack()
  for (const entry of entries) {
    const type = entry.type ?? 'file'
    const header = {name: entry.name, type, linkname: entry.linkname, mode: type === 'directory' ? 0o755 : 0o644, mtime: new Date('2024-01-01T00:00:00Z')}
    if (type === 'file') pack.entry(header, entry.body ?? '')
    else pack.entry(header).end(undefined)
  }
  pack.finalize()
  const chunks: Buffer[] = []
  for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk)
  return Buffer.concat(chunks)
}

/** The entries of a box, in order, following {@link MakeBoxOptions}. */
export async function boxEntries(dir: string, opts: MakeBoxOptions = {}): Promise<TarEntry[]> {
  const disks = opts.disks ?? [{name: 'box-disk001.vmdk', bytes: await defaultDisk(dir)}]
  const diskEntries = disks.map((d, i) => ({
    name: d.name,
    body: i === 0 && opts.textDescriptor ? textDescriptorVmdk(opts.textDescriptor) : d.bytes,
  }))
  const entries: TarEntry[] = [{name: 'Vagrantfile', body: 'Vagrant.configure("2") do |config|\nend\n'}, ...diskEntries]
  if (opts.vagrantfile === false) entries.shift()
  if (opts.ovf !== false) entries.push({name: 'box.ovf', body: opts.ovf ?? makeOvf(disks.map((d) => ({name: d.name, capacityBytes: d.capacityBytes})))})
  if (opts.metadata !== false) {
    const metadata = opts.metadata ?? {provider: 'virtualbox'}
    entries.push({name: 'metadata.json', body: typeof metadata === 'string' ? metadata : JSON.stringify(metadata)})
  }
  if (opts.privateKey) entries.push({name: typeof opts.privateKey === 'string' ? opts.privateKey : 'vagrant_private_key', body: '-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key\n-----END OPENSSH PRIVATE KEY-----\n'})
  if (opts.unsafe) entries.push(...unsafeEntries(opts.unsafe))
  entries.push(...(opts.extra ?? []))
  if (!opts.dotSlash) return entries
  return [{name: './', type: 'directory'}, ...entries.map((e) => ({...e, name: `./${e.name}`}))]
}

function unsafeEntries(kind: NonNullable<MakeBoxOptions['unsafe']>): TarEntry[] {
  switch (kind) {
    case 'symlink': return [{name: 'shadow.vmdk', type: 'symlink', linkname: '/etc/shadow'}]
    case 'hardlink': return [{name: 'passwd', type: 'link', linkname: 'etc/passwd'}]
    case 'dotdot': return [{name: 'a/../../escape.txt', body: 'x'}]
    case 'absolute': return [{name: '/etc/cron.d/evil', body: 'x'}]
    case 'fifo': return [{name: 'pipe', type: 'fifo'}]
    case 'duplicate': return [{name: 'box.ovf', body: 'second copy'}]
  }
}

/** Writes a box file into `dir` and returns its path. */
export async function makeBox(dir: string, fileName: string, opts: MakeBoxOptions = {}): Promise<string> {
  const tarBytes = await packTar(await boxEntries(dir, opts))
  const path = join(dir, fileName)
  await writeFile(path, opts.gzip ? gzipSync(tarBytes) : tarBytes)
  return path
}

/** Reads a tar stream back into entries with their contents, to check what a payload holds. */
export async function readTar(source: Readable | Buffer): Promise<Array<{name: string; type: string; size: number; mode: number; mtime: number; body: Buffer}>> {
  const extract = tar.extract()
  const input = Buffer.isBuffer(source) ? Readable.from([source]) : source
  input.pipe(extract as unknown as NodeJS.WritableStream)
  const result = []
  for await (const entry of extract) {
    const chunks: Buffer[] = []
    for await (const chunk of entry as unknown as AsyncIterable<Buffer>) chunks.push(chunk)
    const {name, type, size, mode, mtime} = entry.header
    result.push({name, type, size, mode, mtime: mtime.getTime(), body: Buffer.concat(chunks)})
  }
  return result
}

/** Collects a stream into one buffer. */
export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}
