// npm run bench:audit: `shien audit` over 10 Vagrant-like images (built once, cached in
// .cache/bench-audit), next to one bare libguestfs launch on the same machine. Prints the wall
// time per image (what an admin waits for) and each image's own time (launch, reads, checks).
// BENCH_CONCURRENCY overrides the configured default of images audited at once.
import {existsSync, mkdirSync} from 'node:fs'
import {cpus, totalmem} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {auditImages} from '../../src/audit/audit-images.js'
import {DEFAULT_AUDIT_CONFIG, weakPasswordList} from '../../src/audit/config.js'
import {GuestfishSession} from '../../src/harden/guestfish.js'
import {buildGuestImages, vagrantBox} from '../support/guest-image.js'

const root = fileURLToPath(new URL('../../..', import.meta.url))
const dir = join(root, '.cache', 'bench-audit')
const COUNT = 10

async function images(): Promise<string[]> {
  const paths = Array.from({length: COUNT}, (_, i) => join(dir, `bench-${String(i + 1).padStart(2, '0')}.qcow2`))
  if (paths.every((p) => existsSync(p))) return paths
  mkdirSync(dir, {recursive: true})
  console.log(`building ${COUNT} images in one launch (once; cached in ${dir})...`)
  const specs = await Promise.all(paths.map(async (image) => ({image, entries: (await vagrantBox()).entries})))
  await buildGuestImages(specs)
  return paths
}

/** `guestfish -a /dev/null run`: the appliance start that every audited image pays once. */
async function bareLaunch(): Promise<number> {
  const t0 = performance.now()
  const g = await GuestfishSession.start()
  await g.addDrive('/dev/null', {format: 'raw', readonly: true})
  await g.launch()
  await g.close()
  return (performance.now() - t0) / 1000
}

const paths = await images()
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? DEFAULT_AUDIT_CONFIG.concurrency)
console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`)
const bare = await bareLaunch()
const config = {...DEFAULT_AUDIT_CONFIG, concurrency, boxes: {...DEFAULT_AUDIT_CONFIG.boxes, max: 0}}
const t0 = performance.now()
const result = await auditImages({images: paths, boxesDir: join(dir, 'no-boxes'), config, lists: await weakPasswordList(config)})
const wall = (performance.now() - t0) / 1000
const own = result.images!.map((r) => r.durationMs / 1000)
const launches = result.images!.reduce((n, r) => n + r.applianceLaunches, 0)
if (result.images!.some((r) => r.status !== 'audited')) throw new Error(`not every image was audited: ${JSON.stringify(result.images)}`)
console.log(`bare libguestfs launch:        ${bare.toFixed(1)} s`)
console.log(`audit of ${COUNT} images:          ${wall.toFixed(1)} s wall, ${concurrency} at once, ${launches} appliance launches, ${result.findings.length} findings`)
console.log(`wall time per image:           ${(wall / COUNT).toFixed(1)} s  (${(wall / COUNT / bare).toFixed(2)} x a bare launch)`)
console.log(`each image's own time:         ${(own.reduce((a, b) => a + b, 0) / COUNT).toFixed(1)} s mean, ${Math.min(...own).toFixed(1)}-${Math.max(...own).toFixed(1)} s`)
