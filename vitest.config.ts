import {defineConfig} from 'vitest/config'

/**
 * Integration tests that need no local blade: some bring their own sshd (or none) and mostly
 * wait (keepalives, timeouts, handshakes); the libguestfs ones work on images of their own, each
 * appliance one TCG qemu, one core. They run beside the blade's tests, with the unit tests, one
 * file at a time: the two streams keep both cores busy.
 */
const ALONGSIDE = [
  'test/integration/connection-stall.test.ts',
  'test/integration/upload-lost.test.ts',
  'test/integration/proxy-jump.test.ts',
  'test/integration/vm-ssh-openssh.test.ts',
  'test/integration/ssh-agent.test.ts',
  'test/integration/install.test.ts',
  'test/integration/arm64-box.test.ts',
  'test/integration/harden.test.ts',
  'test/integration/harden-roots.test.ts',
  'test/integration/harden-arch.test.ts',
  'test/integration/guestfish-files.test.ts',
  'test/integration/delta-harden.test.ts',
  'test/integration/delta-apply.test.ts',
  'test/integration/delta-blocks.test.ts',
]

const timeouts = {testTimeout: 60_000, hookTimeout: 600_000}

export default defineConfig({
  test: {
    ...timeouts,
    // Two files at once, one of each project (vitest's default pool is one worker on 2 cores).
    maxWorkers: 2,
    projects: [
      {
        test: {
          name: 'blade',
          ...timeouts,
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          exclude: ALONGSIDE,
          // These share one local blade (sshd, libvirtd, storage): one file at a time.
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'alongside',
          ...timeouts,
          include: ['test/unit/**/*.test.ts', ...ALONGSIDE],
          fileParallelism: false,
        },
      },
    ],
  },
})
