// npm run bench:manifest: reading a streamOptimized VMDK block by block in Node (what the laptop
// does for a delta push) next to `qemu-img convert -f vmdk -O raw` of the same file, with each
// one's wall time and peak RSS (every run in its own process). Disks: the cached test box's
// VMDK when there is one (read from inside the box's tar, as a push would, and from the
// extracted file), and synthetic disks of BENCH_GIB GiB (default "2,8"), one 1 MiB run of
// data in every 16 MiB. Each row also checks that the Node reader's manifest equals the one
// computed from qemu-img's raw output (and, for the box, manifestOfImage of its qcow2).
import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {createReadStream, existsSync, readdirSync} from 'node:fs'
import {mkdtemp, open, rm, stat} from 'node:fs/promises'
import {cpus, tmpdir, totalmem} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'

import tar from 'tar-stream'

import type {DiskBlocks} from '../../src/box/disk-blocks.js'
import {vmdkStreamBlocks} from '../../src/box/vmdk-stream-blocks.js'
import {manifestOfImage} from '../../src/delta/image-manifest.js'
import {type BlockManifest, encodeManifest} from '../../src/delta/manifest.js'
import {manifestOfRawStream} from '../../src/delta/manifest-builder.js'

const run = promisify(execFile)
const self = fileURLToPath(import.meta.url)
const BOXES = '/var/cache/shien/boxes'

interface Once {
  seconds: number
  maxRssKiB: number
  virtualSize: number
  manifest: string
}

/** One measured read in this process: prints what it found and its own peak RSS. */
async function once(kind: string, path: string): Promise<void> {
  const t0 = performance.now()
  let m: BlockManifest
  if (kind === 'idle') {
    console.log(JSON.stringify({seconds: 0, maxRssKiB: process.resourceUsage().maxRSS, virtualSize: 0, manifest: ''}))
    return
  }
  if (kind === 'vmdk') m = await drain(vmdkStreamBlocks(createReadStream(path, {highWaterMark: 1 << 20}), 'box-disk001.vmdk'))
  else if (kind === 'box') m = await fromBox(path)
  else if (kind === 'qcow2') m = await manifestOfImage(path, {format: 'qcow2'})
  else m = await manifestOfRawStream(createReadStream(path, {highWaterMark: 1 << 20}), (await stat(path)).size)
  const seconds = (performance.now() - t0) / 1000
  const manifest = createHash('sha256').update(encodeManifest(m)).digest('hex')
  console.log(JSON.stringify({seconds, maxRssKiB: process.resourceUsage().maxRSS, virtualSize: m.virtualSize, manifest}))
}

async function drain(blocks: DiskBlocks): Promise<BlockManifest> {
  for await (const b of blocks) void b
  return blocks.manifest()
}

async function fromBox(box: string): Promise<BlockManifest> {
  const extract = tar.extract()
  createReadStream(box, {highWaterMark: 1 << 20}).pipe(extract)
  let m: BlockManifest | undefined
  for await (const entry of extract) {
    if (entry.header.name.endsWith('.vmdk')) m = await drain(vmdkStreamBlocks(entry, entry.header.name.replace(/^.*\//, '')))
    else entry.resume()
  }
  if (!m) throw new Error(`${box} has no VMDK`)
  return m
}

async function child(kind: string, path: string): Promise<Once> {
  const {stdout} = await run(process.execPath, [self, 'once', kind, path], {maxBuffer: 1 << 20})
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Once
}

/** `qemu-img convert -f vmdk -O raw` under /usr/bin/time: wall seconds and peak RSS (KiB). */
async function qemuToRaw(vmdk: string, raw: string): Promise<{seconds: number; maxRssKiB: number}> {
  const {stderr} = await run('/usr/bin/time', ['-f', '%e %M', 'qemu-img', 'convert', '-f', 'vmdk', '-O', 'raw', vmdk, raw])
  const [seconds, rss] = stderr.trim().split('\n').at(-1)!.split(' ').map(Number)
  return {seconds, maxRssKiB: rss}
}

async function syntheticVmdk(dir: string, gib: number): Promise<string> {
  const raw = join(dir, `synthetic-${gib}.raw`)
  const f = await open(raw, 'w')
  await f.truncate(gib * 2 ** 30)
  const chunk = Buffer.alloc(2 ** 20)
  for (let at = 0; at < gib * 2 ** 30; at += 16 * 2 ** 20) {
    for (let i = 0; i < chunk.length; i += 32) chunk.write(createHash('md5').update(`${at}:${i}`).digest('hex'), i, 'latin1')
    await f.write(chunk, 0, chunk.length, at)
  }
  await f.close()
  const vmdk = join(dir, 'box-disk001.vmdk')
  await rm(vmdk, {force: true})
  await run('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', raw, vmdk])
  await rm(raw)
  return vmdk
}

const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`
const rate = (bytes: number, s: number) => `${(bytes / 2 ** 20 / s).toFixed(0)} MiB/s`

async function row(label: string, vmdk: string, dir: string, box?: string): Promise<void> {
  const fileBytes = (await stat(vmdk)).size
  const node = await child('vmdk', vmdk)
  const raw = join(dir, 'out.raw')
  const qemu = await qemuToRaw(vmdk, raw)
  const check = await child('raw', raw)
  await rm(raw)
  if (check.manifest !== node.manifest) throw new Error(`${label}: the Node reader's manifest differs from qemu-img's raw output's`)
  const size = node.virtualSize
  console.log(`${label}: virtual ${(size / 2 ** 30).toFixed(2)} GiB, VMDK ${(fileBytes / 2 ** 20).toFixed(0)} MiB`)
  console.log(`  node reader     ${node.seconds.toFixed(2)} s  ${rate(size, node.seconds)} of virtual disk  peak RSS ${mib(node.maxRssKiB)}`)
  console.log(`  qemu-img -> raw ${qemu.seconds.toFixed(2)} s  ${rate(size, qemu.seconds)} of virtual disk  peak RSS ${mib(qemu.maxRssKiB)}`)
  console.log(`  ratio (node/qemu time) ${(node.seconds / qemu.seconds).toFixed(2)}; manifests equal: yes`)
  if (box) {
    const inTar = await child('box', box)
    const qcow2 = join(dir, 'box.qcow2')
    await run('qemu-img', ['convert', '-f', 'vmdk', '-O', 'qcow2', vmdk, qcow2])
    const blade = await child('qcow2', qcow2)
    await rm(qcow2)
    if (inTar.manifest !== node.manifest || blade.manifest !== node.manifest) throw new Error(`${label}: manifests differ (tar ${inTar.manifest}, qcow2 ${blade.manifest})`)
    console.log(`  node reader from inside the box tar ${inTar.seconds.toFixed(2)} s, peak RSS ${mib(inTar.maxRssKiB)}`)
    console.log(`  manifestOfImage of its qcow2 (blade) ${blade.seconds.toFixed(2)} s, peak RSS ${mib(blade.maxRssKiB)}; same manifest`)
  }
}

async function main(): Promise<void> {
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`)
  console.log(`idle node process with the same modules: peak RSS ${mib((await child('idle', '')).maxRssKiB)}`)
  const dir = await mkdtemp(join(tmpdir(), 'shien-manifest-bench-'))
  try {
    const box = existsSync(BOXES) ? readdirSync(BOXES).filter((n) => /^debian-12-[0-9a-f]{16}\.box$/.test(n)).map((n) => join(BOXES, n))[0] : undefined
    if (box) {
      await run('tar', ['-xf', box, '-C', dir, 'box-disk001.vmdk'])
      await row(`test box ${box}`, join(dir, 'box-disk001.vmdk'), dir, box)
      await rm(join(dir, 'box-disk001.vmdk'))
    }
    for (const gib of (process.env.BENCH_GIB ?? '2,8').split(',').map(Number)) {
      await row(`synthetic ${gib} GiB (1 MiB of data per 16 MiB)`, await syntheticVmdk(dir, gib), dir)
    }
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
}

if (process.argv[2] === 'once') await once(process.argv[3], process.argv[4])
else await main()
