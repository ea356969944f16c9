import {defineConfig} from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 600_000,
    // Integration tests share one local blade (sshd, libvirtd, storage): run files one at a time.
    fileParallelism: false,
  },
})
