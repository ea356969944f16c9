// npm run bench:build: `ie-docker build` next to `podman build` of the same context on the same
// machine, so the price of ie-docker's checks and its private copy of the context shows as a
// ratio. The context is 2,000 files (100 MiB) and one COPY of it onto the shared test image;
// both builds use --no-cache, median of 3. BENCH_FILES changes the file count. Needs root and
// podman, as the integration tests do.
import {execFileSync} from 'node:child_process'
import {chmod, mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {cpus, totalmem} from 'node:os'
import {join} from 'node:path'

import {main} from '../../src/docker/main.js'
import {ensureTestImage, PODMAN_SETTINGS, podman} from '../support/podman.js'
import {ensureUser} from '../support/system.js'

const ACCOUNT = 'shien-bb1'
const FILES = Number(process.env.BENCH_FILES ?? 2000)
const FILE_BYTES = 50 * 1024
const RUNS = 3

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function timed(work: () => Promise<void>): Promise<number> {
  const t0 = performance.now()
  await work()
  return (performance.now() - t0) / 1000
}

const root = await mkdtemp('/var/tmp/shien-bench-build-')
try {
  await chmod(root, 0o755)
  const uid = await ensureUser(ACCOUNT)
  await ensureTestImage()
  const context = join(root, 'users', ACCOUNT, 'ctx')
  await mkdir(join(context, 'files'), {recursive: true})
  const blob = Buffer.alloc(FILE_BYTES, 'x')
  for (let i = 0; i < FILES; i++) await writeFile(join(context, 'files', `f${i}`), blob)
  await writeFile(join(context, 'Containerfile'), 'FROM localhost/shien-test-busybox:latest\nCOPY files /files\n')
  execFileSync('chown', ['-R', `${uid}:${uid}`, join(root, 'users')])
  const docker = {...PODMAN_SETTINGS, buildContextMiB: 1024, proxy: {domain: 'b.test', includeFile: join(root, 'containers.conf')}}
  await writeFile(join(root, 'config.json'), JSON.stringify({storageRoot: root, docker}), {mode: 0o644})

  const plain: number[] = []
  const ours: number[] = []
  for (let run = 0; run < RUNS; run++) {
    plain.push(await timed(async () => {
      const r = await podman('build', '--pull=never', '--no-cache', ...PODMAN_SETTINGS.buildArgs, '-t', 'localhost/shien-bench-plain:latest', context)
      if (r.exitCode !== 0) throw new Error(r.stderr)
    }))
    ours.push(await timed(async () => {
      let out = ''
      const code = await main(['--json', 'build', '--no-cache', '-t', 'bench', context], {
        configPath: join(root, 'config.json'),
        env: {SUDO_UID: String(uid)},
        stdout: (t) => (out += t),
        stderr: () => undefined,
      })
      if (code !== 0) throw new Error(out)
    }))
  }
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`)
  console.log(`context: ${FILES} files, ${(FILES * FILE_BYTES / 2 ** 20).toFixed(0)} MiB; --no-cache; median of ${RUNS}`)
  console.log(`podman build:     ${median(plain).toFixed(2)} s  (${plain.map((s) => s.toFixed(2)).join(', ')})`)
  console.log(`ie-docker build:  ${median(ours).toFixed(2)} s  (${ours.map((s) => s.toFixed(2)).join(', ')})`)
  console.log(`ratio:            ${(median(ours) / median(plain)).toFixed(2)} x`)
  console.log(`peak RSS of this process (ie-docker in it): ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`)
} finally {
  await podman('rmi', '--force', 'localhost/shien-bench-plain:latest', `localhost/${ACCOUNT}-bench:latest`)
  await rm(root, {recursive: true, force: true})
}
