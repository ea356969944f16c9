import {defineConfig} from 'vitest/config'

/**
 * Two projects, run by scripts/test.sh as two processes side by side:
 * - `blade` (test/blade, test/e2e): tests on this machine's blade services, shared by all of them:
 *   the local blade (its sshd, storage and students), the system libvirtd and podman; a file at a time;
 * - `local` (test/unit, test/integration): tests that start what they need themselves (their own
 *   sshds, slapd, ProFTPD, temporary storage roots), a file at a time.
 * `npx vitest run --project blade` (or `local`) runs one of them alone.
 */
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 600_000,
    fileParallelism: false,
    projects: [
      {extends: true, test: {name: 'blade', include: ['test/blade/**/*.test.ts', 'test/e2e/**/*.test.ts']}},
      {extends: true, test: {name: 'local', include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts']}},
    ],
  },
})
