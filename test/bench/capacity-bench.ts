// npm run bench:capacity: the memory a push's heavy steps take on the blade.
//   memsize  finds the smallest LIBGUESTFS_MEMSIZE with which hardenImage gives the same outcome
//            as with libguestfs' default on every image the tests harden (the cached test box,
//            the Vagrant-like guest of harden.test.ts, the planted audit guests, a blank disk),
//            with each appliance qemu's peak RSS.
//   (none)   N pushes' heavy steps at once (convert with push.convertCache, then harden with
//            push.applianceMemMiB) on copies of the test box, for N in BENCH_N (default 1,2,4):
//            the peak of the summed RSS of their processes, against N times one push alone.
import {execFileSync} from 'node:child_process'
import {mkdtemp, readdir, rm} from 'node:fs/promises'
import {cpus, tmpdir, totalmem} from 'node:os'
import {join} from 'node:path'

import {DEFAULT_APPLIANCE_MEM_MIB, pushSettings} from '../../src/config/blade-config.js'
import {hardenImage, type HardenReport} from '../../src/harden/harden-image.js'
import {buildGuestImages, makeKeyPair, vagrantBox} from '../support/guest-image.js'
import {boxGuest, hostKeys, leftoversGuest, weakGuest} from '../support/planted-images.js'
import {convertForPush, testBoxVmdk} from './cached-box.js'
import {mib, sampleTree} from './process-memory.js'

const LIBGUESTFS_DEFAULT_MIB = 1280
const LIBGUESTFS_FLOOR_MIB = 256
const STEP_MIB = 32

interface Image {
  name: string
  path: string
}

/** What a harden did, in a form two runs can be compared by (or the error code). */
function outcome(r: HardenReport | {code?: string}): string {
  if (!('image' in r)) return `refused ${r.code}`
  return JSON.stringify([r.distro, r.insecureKeysRemoved, r.keyInstalled, r.unsafeLinksRemoved, r.accountsLocked, r.machineId, r.sshd.changed])
}

async function hardenOnce(image: Image, work: string, memMiB: number | undefined, key: string): Promise<{outcome: string; qemuMiB: number; seconds: number}> {
  const copy = join(work, `${image.name}-${memMiB ?? 'default'}.qcow2`)
  execFileSync('cp', ['--sparse=always', image.path, copy])
  const sampler = sampleTree(process.pid)
  const t0 = performance.now()
  const r = await hardenImage(copy, {publicKey: key, applianceMemMiB: memMiB, signal: AbortSignal.timeout(300_000)}).catch((e: {code?: string}) => e)
  const peak = sampler.stop()
  await rm(copy, {force: true})
  const qemuKiB = Math.max(0, ...Object.entries(peak.hwmByCommand).filter(([n]) => n.startsWith('qemu-system')).map(([, v]) => v))
  return {outcome: outcome(r), qemuMiB: mib(qemuKiB), seconds: (performance.now() - t0) / 1000}
}

async function memsize(work: string): Promise<void> {
  const vmdk = await testBoxVmdk(work)
  const images: Image[] = [{name: 'test-box', path: join(work, 'test-box.qcow2')}]
  await convertForPush(vmdk, images[0].path)
  const box = await vagrantBox({extraPasswd: ['alice:x:1001:1001::/home/alice:/bin/bash']})
  const keys = await hostKeys()
  const planted = [
    {name: 'vagrant-like', entries: [...box.entries, {type: 'symlink' as const, path: '/home/alice/.ssh/authorized_keys', target: '/etc/shadow'}]},
    {name: 'weak', entries: await weakGuest(keys)},
    {name: 'leftovers', entries: await leftoversGuest(keys), lvm: 'leftovers'},
    {name: 'box', entries: boxGuest(keys)},
  ]
  await buildGuestImages(planted.map((p) => ({...p, image: join(work, `${p.name}.qcow2`)})))
  images.push(...planted.map((p) => ({name: p.name, path: join(work, `${p.name}.qcow2`)})))
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(work, 'blank.qcow2'), '64M'])
  images.push({name: 'blank', path: join(work, 'blank.qcow2')})
  const key = (await makeKeyPair('ed25519', 'bench@laptop')).publicLine
  let overall = LIBGUESTFS_FLOOR_MIB
  for (const image of images) {
    const reference = await hardenOnce(image, work, undefined, key)
    const passes = async (m: number) => (await hardenOnce(image, work, m, key)).outcome === reference.outcome
    // Bisect between libguestfs' floor and its default, which passes by definition.
    let [lo, hi] = [LIBGUESTFS_FLOOR_MIB, LIBGUESTFS_DEFAULT_MIB]
    if (await passes(lo)) hi = lo
    while (hi - lo > STEP_MIB) {
      const mid = Math.round((lo + hi) / 2 / STEP_MIB) * STEP_MIB
      if (await passes(mid)) hi = mid
      else lo = mid
    }
    overall = Math.max(overall, hi)
    const atDefault = await hardenOnce(image, work, DEFAULT_APPLIANCE_MEM_MIB, key)
    console.log(`${image.name}: ${reference.outcome.slice(0, 60)}; smallest memsize ${hi} MiB; appliance qemu peak RSS `
      + `${reference.qemuMiB} MiB at ${LIBGUESTFS_DEFAULT_MIB} (${reference.seconds.toFixed(1)} s), `
      + `${atDefault.qemuMiB} MiB at ${DEFAULT_APPLIANCE_MEM_MIB} (${atDefault.seconds.toFixed(1)} s, ${atDefault.outcome === reference.outcome ? 'same outcome' : 'DIFFERENT OUTCOME'})`)
  }
  console.log(`smallest memsize for every image: ${overall} MiB; push.applianceMemMiB default: ${DEFAULT_APPLIANCE_MEM_MIB} MiB`)
}

/** `n` pushes' heavy steps at once; the peak of their summed RSS and the slowest one's time. */
async function concurrent(work: string, vmdk: string, n: number, key: string): Promise<{peakMiB: number; seconds: number}> {
  const sampler = sampleTree(process.pid)
  const t0 = performance.now()
  const settings = pushSettings({})
  await Promise.all(Array.from({length: n}, async (_, i) => {
    const image = join(work, `push-${n}-${i}.qcow2`)
    await convertForPush(vmdk, image)
    await hardenImage(image, {publicKey: key, applianceMemMiB: settings.applianceMemMiB})
    await rm(image, {force: true})
  }))
  const seconds = (performance.now() - t0) / 1000
  return {peakMiB: mib(sampler.stop().sumRssKiB), seconds}
}

async function main(): Promise<void> {
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, ${execFileSync('qemu-img', ['--version'], {encoding: 'utf8'}).split('\n')[0]}`)
  const work = await mkdtemp('/var/tmp/shien-capacity-')
  // The test support's key pairs go to folders of their own in tmpdir(); remove the ones made here.
  const keyDirs = async () => (await readdir(tmpdir())).filter((n) => n.startsWith('shien-test-key-'))
  const before = new Set(await keyDirs())
  try {
    if (process.argv[2] === 'memsize') return await memsize(work)
    const vmdk = await testBoxVmdk(work)
    const key = (await makeKeyPair('ed25519', 'bench@laptop')).publicLine
    const ns = (process.env.BENCH_N ?? '1,2,4').split(',').map(Number)
    const one = await concurrent(work, vmdk, 1, key)
    for (const n of ns) {
      const r = n === 1 ? one : await concurrent(work, vmdk, n, key)
      console.log(`${n} at once: peak ${r.peakMiB} MiB = ${(r.peakMiB / one.peakMiB).toFixed(2)} x one push (${one.peakMiB} MiB), `
        + `${r.seconds.toFixed(0)} s = ${(r.seconds / one.seconds).toFixed(2)} x one push`)
    }
  } finally {
    await rm(work, {recursive: true, force: true})
    for (const dir of await keyDirs()) if (!before.has(dir)) await rm(join(tmpdir(), dir), {recursive: true, force: true})
  }
}

await main()
