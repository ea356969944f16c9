import {cp, mkdir, mkdtemp, readFile, rm, symlink} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'

import {execa} from 'execa'

import {main} from '../../src/docker/main.js'

/** The image the tests run: the host's busybox with its libraries, serving HTTP on 8080. */
export const TEST_IMAGE = 'localhost/shien-test-busybox:latest'

/** podman as the tests use it (root, runc: crun fails on this machine's cgroups). */
export const podman = (...args: string[]) => execa('podman', ['--runtime', 'runc', ...args], {reject: false})

/** The engine settings for the blade config of a test. */
export const PODMAN_SETTINGS = {
  engine: 'podman',
  engineArgs: ['--runtime', 'runc'],
  runArgs: ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'],
  buildArgs: ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'],
  images: [TEST_IMAGE],
}

/**
 * Makes TEST_IMAGE locally (no registry): /bin/busybox and the libraries ldd lists, imported
 * with `podman import`, exposing 8080 and running `httpd -f -p 8080 -h /www` by default.
 */
export async function ensureTestImage(): Promise<string> {
  if ((await podman('image', 'exists', TEST_IMAGE)).exitCode === 0) return TEST_IMAGE
  const dir = await mkdtemp(join(tmpdir(), 'shien-busybox-'))
  const tree = join(dir, 'rootfs')
  try {
    await mkdir(join(tree, 'bin'), {recursive: true})
    await cp('/bin/busybox', join(tree, 'bin', 'busybox'))
    const {stdout} = await execa('ldd', ['/bin/busybox'])
    for (const lib of stdout.match(/\/\S+/g) ?? []) {
      await mkdir(join(tree, dirname(lib)), {recursive: true})
      await cp(lib, join(tree, lib), {dereference: true})
    }
    for (const applet of ['sh', 'httpd', 'cat', 'sleep', 'id', 'ls', 'touch', 'echo']) await symlink('busybox', join(tree, 'bin', applet))
    await mkdir(join(tree, 'www'))
    await execa('sh', ['-c', 'echo "hello from shien" > "$1/www/index.html"', 'sh', tree])
    await execa('tar', ['-C', tree, '-cf', join(dir, 'rootfs.tar'), '.'])
    const changes = ['EXPOSE 8080', 'CMD ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]'].flatMap((c) => ['--change', c])
    await execa('podman', ['import', ...changes, join(dir, 'rootfs.tar'), TEST_IMAGE])
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
  return TEST_IMAGE
}

/** Names of every container on the engine: the ground truth for "nothing was created". */
export async function allContainers(): Promise<string[]> {
  return (await podman('ps', '-a', '--format', '{{.Names}}')).stdout.split('\n').filter(Boolean).sort()
}

/** Removes every container whose name starts with `prefix` (test cleanup). */
export async function removeContainers(prefix: string): Promise<void> {
  for (const name of await allContainers()) if (name.startsWith(prefix)) await podman('rm', '--force', '--time', '0', name)
}

/** The memory limit in bytes the kernel enforces on a running container (cgroup v1 or v2). */
export async function cgroupMemoryLimit(container: string): Promise<number> {
  const pid = (await podman('inspect', '--format', '{{.State.Pid}}', container)).stdout.trim()
  const lines = (await readFile(`/proc/${pid}/cgroup`, 'utf8')).split('\n')
  const v1 = lines.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l))
  const file = v1 ? `/sys/fs/cgroup/memory${v1.split(':')[2]}/memory.limit_in_bytes` : `/sys/fs/cgroup${lines.find((l) => l.startsWith('0::'))!.slice(3)}/memory.max`
  return Number((await readFile(file, 'utf8')).trim())
}

/**
 * Runs ie-docker in this process (the tests are root) as `account` would through sudo: SUDO_UID
 * is the account's uid and the config is the test's. Returns the exit code, the --json body and
 * what it printed on stderr (build's steps).
 */
export function ieDockerRunner(configPath: () => string, uid: Record<string, number>) {
  return async (account: string, ...argv: string[]) => {
    let out = ''
    let log = ''
    const code = await main(['--json', ...argv], {
      configPath: configPath(),
      env: {SUDO_UID: String(uid[account])},
      stdout: (t) => (out += t),
      stderr: (t) => (log += t),
    })
    return {code, body: JSON.parse(out), log}
  }
}
