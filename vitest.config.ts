import {defineConfig} from 'vitest/config'

/**
 * Integration and end-to-end tests that need neither the local blade nor much CPU: each brings
 * its own sshd (or none) and mostly waits (keepalives, timeouts, handshakes). They run beside
 * the blade's tests, with the unit tests, one file at a time.
 */
const ALONGSIDE = [
  'test/integration/connection-stall.test.ts',
  'test/integration/upload-lost.test.ts',
  'test/integration/proxy-jump.test.ts',
  'test/integration/vm-ssh-openssh.test.ts',
  'test/integration/ssh-agent.test.ts',
  'test/integration/install.test.ts',
  'test/integration/arm64-box.test.ts',
]

const timeouts = {testTimeout: 60_000, hookTimeout: 600_000}

export default defineConfig({
  test: {
    ...timeouts,
    // Two files at most at once, on a 2-core machine: one of each project.
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
