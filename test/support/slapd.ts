import {createHash, randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdir, readFile, readlink, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {execa} from 'execa'

const FIXTURES = fileURLToPath(new URL('../fixtures/ldap/', import.meta.url))
const STATE = '/var/lib/shien-test-slapd'
const PORT = 38_989
const SUFFIX = 'dc=shien,dc=test'

/** A real OpenLDAP slapd on loopback, loaded with test/fixtures/ldap/base.ldif. */
export interface TestDirectory {
  url: string
  suffix: string
  peopleBase: string
  groupsBase: string
  /** The DN ie-virsh binds as, and its password file (root-only, as on a blade). */
  serviceDn: string
  servicePasswordFile: string
  rootDn: string
  rootPasswordFile: string
}

const directory: TestDirectory = {
  url: `ldap://127.0.0.1:${PORT}`,
  suffix: SUFFIX,
  peopleBase: `ou=people,${SUFFIX}`,
  groupsBase: `ou=groups,${SUFFIX}`,
  serviceDn: `cn=ie-virsh,ou=services,${SUFFIX}`,
  servicePasswordFile: join(STATE, 'service.password'),
  rootDn: `cn=admin,${SUFFIX}`,
  rootPasswordFile: join(STATE, 'root.password'),
}

let pending: Promise<TestDirectory> | undefined

/**
 * Starts slapd (once per process; a slapd left running by an earlier run with the same
 * configuration is reused) and makes sure the base entries are there. Needs root and the
 * Debian packages slapd and ldap-utils (scripts/deps.d/ldap.list).
 */
export function ensureSlapd(): Promise<TestDirectory> {
  pending ??= start().catch((error: unknown) => {
    pending = undefined
    throw error
  })
  return pending
}

async function start(): Promise<TestDirectory> {
  await mkdir(STATE, {recursive: true, mode: 0o700})
  const rootPassword = await secret(directory.rootPasswordFile)
  await secret(directory.servicePasswordFile)
  const template = await readFile(join(FIXTURES, 'slapd.conf.in'), 'utf8')
  const conf = template.replaceAll('{{state}}', STATE).replaceAll('{{rootPassword}}', rootPassword)
  const confPath = join(STATE, 'slapd.conf')
  const stamp = createHash('sha256').update(conf).digest('hex')
  const running = await runningPid()
  const same = existsSync(join(STATE, 'stamp')) && (await readFile(join(STATE, 'stamp'), 'utf8')) === stamp
  if (running === undefined || !same || !(await answers())) {
    if (running !== undefined) await stop(running)
    await writeFile(confPath, conf, {mode: 0o600})
    await rm(join(STATE, 'db'), {recursive: true, force: true})
    await mkdir(join(STATE, 'db'), {mode: 0o700})
    await execa('slapd', ['-h', `${directory.url}/`, '-f', confPath])
    await waitUntil(answers, 'slapd did not answer on ' + directory.url)
    await writeFile(join(STATE, 'stamp'), stamp)
  }
  if ((await ldap('ldapsearch', ['-b', SUFFIX, '-s', 'base', 'dn'])).exitCode === 32) await loadBase()
  return directory
}

/** Replaces every person and group with the entries of `ldif` (other tests' entries go too). */
export async function replaceEntries(ldif: string): Promise<void> {
  const d = await ensureSlapd()
  for (const base of [d.peopleBase, d.groupsBase]) {
    const r = await ldap('ldapdelete', ['-r', base])
    if (r.exitCode !== 0 && r.exitCode !== 32) throw new Error(`ldapdelete ${base}: ${r.stderr}`)
    await add(`dn: ${base}\nobjectClass: organizationalUnit\nou: ${base.split(',')[0].slice(3)}\n`)
  }
  if (ldif.trim() !== '') await add(ldif)
}

/** A posixAccount entry. */
export function person(account: string, uid: number, gid: number): string {
  return [
    `dn: uid=${account},ou=people,${SUFFIX}`,
    'objectClass: inetOrgPerson',
    'objectClass: posixAccount',
    `uid: ${account}`,
    `cn: ${account}`,
    `sn: ${account}`,
    `uidNumber: ${uid}`,
    `gidNumber: ${gid}`,
    `homeDirectory: /home/${account}`,
    '',
  ].join('\n')
}

/** A posixGroup entry with memberUid values. */
export function group(name: string, gid: number, members: string[]): string {
  return [`dn: cn=${name},ou=groups,${SUFFIX}`, 'objectClass: posixGroup', `cn: ${name}`, `gidNumber: ${gid}`, ...members.map((m) => `memberUid: ${m}`), ''].join('\n')
}

async function loadBase(): Promise<void> {
  const base = await readFile(join(FIXTURES, 'base.ldif'), 'utf8')
  await add(base.replaceAll('{{servicePassword}}', await readFile(directory.servicePasswordFile, 'utf8')))
}

async function add(ldif: string): Promise<void> {
  const r = await ldap('ldapadd', [], ldif)
  if (r.exitCode !== 0) throw new Error(`ldapadd failed: ${r.stderr}`)
}

/** Runs an OpenLDAP client as the directory's root DN; the password goes by file (-y), not argv. */
function ldap(tool: string, args: string[], input?: string) {
  const auth = ['-x', '-H', directory.url, '-D', directory.rootDn, '-y', directory.rootPasswordFile]
  return execa(tool, [...auth, ...args], {reject: false, input, timeout: 30_000})
}

/** A random secret kept in a root-only file; made once, so a reused slapd still matches it. */
async function secret(path: string): Promise<string> {
  if (!existsSync(path)) await writeFile(path, randomBytes(18).toString('base64url'), {mode: 0o600})
  return readFile(path, 'utf8')
}

async function runningPid(): Promise<number | undefined> {
  const pid = Number((await readFile(join(STATE, 'slapd.pid'), 'utf8').catch(() => '')).trim())
  if (!Number.isInteger(pid) || pid <= 0) return undefined
  const exe = await readlink(`/proc/${pid}/exe`).catch(() => '')
  return exe.endsWith('/slapd') ? pid : undefined
}

async function answers(): Promise<boolean> {
  const r = await execa('ldapsearch', ['-x', '-H', directory.url, '-s', 'base', '-b', '', 'namingContexts'], {reject: false, timeout: 5000})
  return r.exitCode === 0
}

async function stop(pid: number): Promise<void> {
  process.kill(pid, 'SIGTERM')
  await waitUntil(async () => !existsSync(`/proc/${pid}`), `slapd (pid ${pid}) did not stop`)
}

async function waitUntil(check: () => Promise<boolean>, message: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(message)
}
