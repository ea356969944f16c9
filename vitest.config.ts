import {defineConfig} from 'vitest/config'

/**
 * Two projects, run by scripts/test.sh as two processes side by side:
 * - `blade` (test/blade, test/e2e, test/containers): tests on the local blade that
 *   scripts/local-blade.sh sets up (its sshd, students, storage and port pools), which they share,
 *   and tests that count every VM on libvirtd (the blade-wide memory limit); a file at a time.
 *   test/containers are the local blade's container tests (shien container, ie-docker through its
 *   sudo rule): they use its sshd and students but no VM, slot, image or push queue; they are in
 *   this project to even out the two projects' lengths;
 * - `local` (test/unit, test/integration): everything else, a file at a time. Each test brings
 *   its own servers (sshds, slapd, ProFTPD), storage root, accounts and port pool (42600 and up,
 *   away from the blade's), so it may share the system libvirtd and podman with the blade's. The
 *   cluster lab's tests (test/support/cluster-lab.ts) are here, one lab at a time.
 * `npx vitest run --project blade` (or `local`) runs one of them alone.
 */
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 600_000,
    fileParallelism: false,
    projects: [
      {extends: true, test: {name: 'blade', include: ['test/blade/**/*.test.ts', 'test/e2e/**/*.test.ts', 'test/containers/**/*.test.ts']}},
      {extends: true, test: {name: 'local', include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts']}},
    ],
  },
})
