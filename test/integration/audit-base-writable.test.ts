/**
 * `base-writable`: an overlay whose published base its owner can change, on real qcow2 images
 * (qemu-img), a real account in a real group, real modes and POSIX ACLs. Each case gets its own
 * version of the base and its own overlay, vetted by the audit's gate as `shien audit` does. What
 * the finding says is held against the kernel: `test -w` run as the student with their groups.
 * One case goes through auditImage, which spends one appliance launch (an empty disk: AUDIT_NO_OS).
 */
import {chmod, chown, mkdir, mkdtemp, realpath, rm, symlink} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {auditImage} from '../../src/audit/audit-image.js'
import {baseWritableFinding} from '../../src/audit/base-writable.js'
import {gateImage} from '../../src/audit/image-gate.js'
import {describeTarget, type ImageTarget} from '../../src/audit/targets.js'
import type {Finding} from '../../src/audit/types.js'
import {getentUid} from '../../src/privileged/caller.js'
import {ensureUser} from '../support/system.js'
import '../support/guest-image.js'

const STUDENT = 'shien-bw-student'
const COURSE = 'shien-bw-course'
const OTHER_GROUP = 'shien-bw-other'
const BOX = ['os101', 'debian12']

let work: string
let boxes: string
let uid: number
const gid: Record<string, number> = {}
let slots = 0

interface Case {
  base: string
  versionDir: string
  image: string
  target: ImageTarget
}

const qemuImg = (...args: string[]) => execa('qemu-img', ['create', '-q', '-f', 'qcow2', ...args])

/**
 * A base published as `shien box publish` leaves it (0444, root-owned, in 0755 root-owned
 * folders), and the student's overlay of it, naming it by its path or by `o.name`.
 */
async function published(version: string, o: {backing?: string; name?: string} = {}): Promise<Case> {
  const versionDir = join(boxes, ...BOX, version)
  await mkdir(versionDir, {recursive: true, mode: 0o755})
  const base = join(versionDir, 'libvirt.qcow2')
  await (o.backing ? qemuImg('-b', o.backing, '-F', 'qcow2', base) : qemuImg(base, '16M'))
  await chmod(base, 0o444)
  const image = join(work, 'root', 'users', STUDENT, 'images', `${String(++slots).padStart(2, '0')}.qcow2`)
  await qemuImg('-b', o.name ?? base, '-F', 'qcow2', image)
  await chown(image, uid, gid[STUDENT])
  return {base, versionDir, image, target: await describeTarget(image, boxes, getentUid)}
}

/** What `shien audit` finds about the image's base: the gate first, as the audit does. */
async function check(c: Case): Promise<Finding | undefined> {
  const gate = await gateImage(c.image, c.target.scope)
  if (!gate.ok) throw new Error(`the gate refused ${c.image}: ${gate.message}`)
  return baseWritableFinding({image: c.image, account: c.target.account, slot: c.target.slot}, gate, c.target.scope)
}

/** The kernel's answer: can the student, with all their groups, write `path`? */
async function studentCanWrite(path: string): Promise<boolean> {
  return (await execa('runuser', ['-u', STUDENT, '--', 'test', '-w', path], {reject: false})).exitCode === 0
}

const setfacl = (...args: string[]) => execa('setfacl', args)

beforeAll(async () => {
  uid = await ensureUser(STUDENT, [COURSE])
  await execa('groupadd', ['-f', OTHER_GROUP])
  for (const [key, name] of [[STUDENT, STUDENT], [COURSE, COURSE], [OTHER_GROUP, OTHER_GROUP]]) {
    gid[key] = Number((await execa('getent', ['group', name])).stdout.split(':')[2])
  }
  gid[STUDENT] = Number((await execa('id', ['-g', STUDENT])).stdout)
  // The student must reach the files for the kernel checks: the temp folder is made 0755, /tmp stays as it is.
  work = await realpath(await mkdtemp(join(tmpdir(), 'shien-audit-bw-')))
  await chmod(work, 0o755)
  boxes = join(work, 'root', 'boxes')
  await mkdir(boxes, {recursive: true, mode: 0o755})
  const images = join(work, 'root', 'users', STUDENT, 'images')
  await mkdir(images, {recursive: true, mode: 0o700})
  await chown(join(work, 'root', 'users', STUDENT), uid, gid[STUDENT])
  await chown(images, uid, gid[STUDENT])
}, 120_000)

afterAll(async () => {
  if (work) await rm(work, {recursive: true, force: true})
})

describe('base-writable', () => {
  it('finds nothing for a base published read-only in root-owned folders', async () => {
    const c = await published('1.0.0')
    expect(await check(c)).toBeUndefined()
    for (const path of [c.base, c.versionDir, join(boxes, BOX[0]), boxes]) expect(await studentCanWrite(path)).toBe(false)
  })

  it('finds a base owned by the student, who can chmod it', async () => {
    const c = await published('1.1.0')
    await chown(c.base, uid, 0)
    const f = await check(c)
    expect(f).toMatchObject({
      code: 'base-writable', severity: 'high', image: c.image, account: STUDENT,
      detail: {base: c.base, grants: [`${c.base}: is owned by ${STUDENT} (uid ${uid})`]},
    })
    expect(f!.message).toContain(`${STUDENT} can change the published base ${c.base}`)
    expect(f!.fix).toContain(`chown root:root ${c.base} && chmod 0444 ${c.base}`)
  })

  it('finds a base everyone may write (mode 0666)', async () => {
    const c = await published('1.2.0')
    await chmod(c.base, 0o666)
    expect(await studentCanWrite(c.base)).toBe(true)
    expect((await check(c))?.detail?.grants).toEqual([`${c.base}: has mode 0666: everyone may write it`])
  })

  it('finds a base its group may write when the student is in that group, and not otherwise', async () => {
    const c = await published('1.3.0')
    await chown(c.base, 0, gid[COURSE])
    await chmod(c.base, 0o664)
    expect(await studentCanWrite(c.base)).toBe(true)
    expect((await check(c))?.detail?.grants).toEqual([`${c.base}: has mode 0664 and group ${gid[COURSE]}, which ${STUDENT} is in: the group may write it`])
    await chown(c.base, 0, gid[OTHER_GROUP])
    expect(await studentCanWrite(c.base)).toBe(false)
    expect(await check(c)).toBeUndefined()
  })

  it('finds an ACL entry that lets the student or their group write, unless the mask hides it', async () => {
    const c = await published('1.4.0')
    await setfacl('-m', `u:${uid}:rw-`, c.base)
    expect(await studentCanWrite(c.base)).toBe(true)
    const f = await check(c)
    expect(f?.detail?.grants).toEqual([`${c.base}: has the ACL entry user:${uid}:rw-, for ${STUDENT}`])
    expect(f!.fix).toContain(`setfacl -b ${c.base}`)
    await setfacl('-m', 'm::r--', c.base)
    expect(await studentCanWrite(c.base)).toBe(false)
    expect(await check(c)).toBeUndefined()
    await setfacl('-b', c.base)
    await setfacl('-m', `g:${gid[COURSE]}:rw-`, c.base)
    expect(await studentCanWrite(c.base)).toBe(true)
    expect((await check(c))?.detail?.grants).toEqual([`${c.base}: has the ACL entry group:${gid[COURSE]}:rw-, a group ${STUDENT} is in`])
  })

  it('finds a folder on the way down from <root>/boxes that the student may write or owns', async () => {
    const c = await published('1.5.0')
    await chmod(c.versionDir, 0o777)
    expect(await studentCanWrite(c.versionDir)).toBe(true)
    const f = await check(c)
    expect(f?.detail?.grants).toEqual([`${c.versionDir}: has mode 0777: everyone may write it`])
    expect(f!.message).toContain(`the folder ${c.versionDir} has mode 0777`)
    expect(f!.fix).toContain(`chown root:root ${c.versionDir} && chmod 0755 ${c.versionDir}`)
    await chmod(c.versionDir, 0o755)
    expect(await check(c)).toBeUndefined()
    // Higher up: the box's folder, owned by the student (mode 0755: they can chmod it, or rename what is in it).
    const boxDir = join(boxes, ...BOX)
    await chown(boxDir, uid, 0)
    try {
      expect((await check(c))?.detail?.grants).toEqual([`${boxDir}: is owned by ${STUDENT} (uid ${uid})`])
    } finally {
      await chown(boxDir, 0, 0)
    }
  })

  it('finds a published base whose own backing file is the student\'s', async () => {
    const own = join(work, 'root', 'users', STUDENT, 'images', 'behind.qcow2')
    await qemuImg(own, '16M')
    await chown(own, uid, gid[STUDENT])
    const c = await published('1.6.0', {backing: own})
    const f = await check(c)
    expect(f?.detail).toEqual({base: c.base, grants: [`${own}: is owned by ${STUDENT} (uid ${uid})`]})
    // Making the student's file read-only would not do: the fix is a base that stands alone.
    expect(f!.fix).not.toContain(own)
  })

  it('finds a folder the student may write that the overlay\'s name for its base passes through a symlink, off the real path', async () => {
    // boxes/links/current -> ../os101/debian12/1.9.0: the base is published properly, the name is not.
    const links = join(boxes, 'links')
    await mkdir(links, {mode: 0o755})
    await symlink(`../${BOX.join('/')}/1.9.0`, join(links, 'current'))
    const c = await published('1.9.0', {name: join(links, 'current', 'libvirt.qcow2')})
    expect(await check(c)).toBeUndefined()
    // Sticky: \`current\` cannot be renamed by a student, but a name missing there can be taken; still no way to publish.
    await chmod(links, 0o1777)
    expect(await studentCanWrite(links)).toBe(true)
    const f = await check(c)
    expect(f?.detail).toEqual({base: c.base, grants: [`${links}: has mode 1777: everyone may write it`]})
    await chmod(links, 0o755)
  })

  it('does not follow a symlinked folder met on the way: the check fails instead', async () => {
    const c = await published('1.7.0')
    await symlink('1.7.0', join(boxes, ...BOX, 'linked'))
    const through = join(boxes, ...BOX, 'linked', 'libvirt.qcow2')
    await expect(baseWritableFinding({image: c.image}, {chain: [through], names: [through]}, c.target.scope)).rejects.toMatchObject({code: 'AUDIT_BASE_UNCHECKED'})
  })

  it('reaches the audit\'s findings for the image, which auditImage reports', async () => {
    const c = await published('1.8.0')
    await chmod(c.base, 0o666)
    const audit = await auditImage(c.target, {lists: {builtin: [], admin: []}, timeoutMs: 300_000})
    expect(audit.findings.map((f) => f.code)).toEqual(['base-writable'])
    // An empty disk: the appliance finds no OS; the base's finding stands.
    expect(audit.report).toMatchObject({status: 'failed', error: {code: 'AUDIT_NO_OS'}})
  }, 300_000)
})
