/**
 * `shien audit --live`: the running domains of this blade's libvirt, probed over the network
 * as a stranger would: which configured TCP ports listen, whether sshd takes Vagrant's insecure
 * keys or a weak password. Everything is bounded: a few domains at a time, a fixed number of
 * password attempts per account, and a time budget per domain.
 */
import type {BladeConfig} from '../../config/blade-config.js'
import {weakPasswordList, type AuditConfig} from '../config.js'
import {sortFindings, summarize} from '../outcome.js'
import {candidatesFor} from '../passwords.js'
import pMap from 'p-map'
import type {AuditResult, DomainReport, Finding} from '../types.js'
import {endpointFor, runningDomains, VirshLive, type Endpoint, type LiveDomain, type LiveHypervisor} from './domains.js'
import {loginFindings, openPortFindings, passwordAuthFindings} from './live-findings.js'
import {VAGRANT_INSECURE_PRIVATE_KEYS} from './insecure-private-keys.js'
import {probePort} from './port-probe.js'
import {tryLogins, type LoginCredential} from './ssh-login.js'

export interface LivePlan {
  blade: Pick<BladeConfig, 'libvirtUri'>
  config: AuditConfig
}

export async function auditLive(plan: LivePlan, o: {signal?: AbortSignal; hypervisor?: LiveHypervisor} = {}): Promise<AuditResult> {
  const started = performance.now()
  const startedAt = new Date().toISOString()
  const hv = o.hypervisor ?? new VirshLive(plan.blade.libvirtUri)
  const lists = await weakPasswordList(plan.config)
  const domains = await runningDomains(hv, {signal: o.signal})
  const audits = await pMap(domains, (d) => auditDomain(d, plan.config, lists, o.signal), {concurrency: Math.max(1, plan.config.live.concurrency)})
  const findings = sortFindings(audits.flatMap((a) => a.findings))
  const {summary, exitCode} = summarize(findings, audits.filter((a) => a.report.status !== 'audited').length)
  return {mode: 'live', startedAt, durationMs: Math.round(performance.now() - started), summary, domains: audits.map((a) => a.report), findings, exitCode}
}

type Lists = {builtin: string[]; admin: string[]}
type DomainAudit = {report: DomainReport; findings: Finding[]}

async function auditDomain(domain: LiveDomain, config: AuditConfig, lists: Lists, outer?: AbortSignal): Promise<DomainAudit> {
  const started = performance.now()
  const live = config.live
  const budget = AbortSignal.any([...(outer ? [outer] : []), AbortSignal.timeout(live.domainTimeoutMs)])
  const ref = {domain: domain.name, account: domain.account, slot: domain.slot}
  const ports = await probePorts(domain, config, budget)
  const base = {name: domain.name, account: domain.account, slot: domain.slot, reachedVia: domain.reachedVia, ports}
  const ms = () => Math.round(performance.now() - started)
  const ssh = endpointFor(domain, 22)
  // A guest still booting (or without sshd) sends no banner: find out before any login waits on it.
  const sshState = ssh && (ports.find((p) => p.port === 22)?.state ?? (await probePort(ssh, {connectTimeoutMs: live.connectTimeoutMs, graceMs: live.portGraceMs, signal: budget})))
  if (!ssh || sshState !== 'open') {
    const message = ssh ? `nothing answers on the SSH port (${ssh.host}:${ssh.port}: ${sshState})` : 'libvirt knows no forwarded SSH port and no address for this domain'
    const error = {code: ssh ? 'AUDIT_SSH_UNREACHABLE' : 'AUDIT_NO_ENDPOINT', message}
    return {report: {...base, status: 'unreachable', attempts: 0, durationMs: ms(), error}, findings: openPortFindings(ref, ports, live.allowedPorts)}
  }
  const results = await Promise.all(live.users.map((user) => probeAccount(ssh, user, lists, live.maxPasswordAttempts, live.domainTimeoutMs, budget)))
  const all = results.flatMap((r) => [r.keys, ...(r.passwords ? [r.passwords] : [])])
  const reached = all.find((r) => r.methods.length > 0)
  const error = reached ? undefined : {code: 'AUDIT_SSH_UNREACHABLE', message: `sshd at ${ssh.host}:${ssh.port} did not answer: ${all.find((r) => r.error)?.error ?? 'no reply'}`}
  const report: DomainReport = {
    ...base, status: !reached ? 'unreachable' : budget.aborted ? 'partial' : 'audited', attempts: all.reduce((n, r) => n + r.tried, 0), durationMs: ms(),
    ...(reached ? {ssh: {methods: reached.methods, ...(reached.hostKey ? {hostKey: reached.hostKey} : {})}} : {}),
    ...(error ? {error} : {}),
  }
  const findings = [
    ...results.flatMap((r) => loginFindings(ref, r.user, r.keys, r.passwords, `${ssh.host}:${ssh.port}`)),
    ...passwordAuthFindings(ref, reached), ...openPortFindings(ref, ports, live.allowedPorts),
  ]
  return {report, findings}
}

/**
 * The insecure keys, then (unless sshd could not be reached) the weak passwords, each on its own
 * connections, so a working key does not hide a working password. sshd delays each failed password
 * by seconds: the domain's budget, not a per-connection timeout, bounds the whole.
 */
async function probeAccount(ssh: Endpoint, user: string, lists: Lists, maxPasswords: number, timeoutMs: number, signal: AbortSignal) {
  const keys = await tryLogins(ssh, user, keyCredentials(), {timeoutMs, signal})
  const passwords = keys.error ? undefined : await tryLogins(ssh, user, passwordCredentials(user, lists, maxPasswords), {timeoutMs, signal})
  return {user, keys, passwords}
}

async function probePorts(domain: LiveDomain, config: AuditConfig, signal: AbortSignal): Promise<DomainReport['ports']> {
  const targets = config.live.ports.flatMap((port) => {
    const endpoint = endpointFor(domain, port)
    return endpoint ? [{port, endpoint}] : []
  })
  const o = {connectTimeoutMs: config.live.connectTimeoutMs, graceMs: config.live.portGraceMs, signal}
  return Promise.all(targets.map(async ({port, endpoint}) => ({port, state: await probePort(endpoint, o)})))
}

function keyCredentials(): LoginCredential[] {
  return VAGRANT_INSECURE_PRIVATE_KEYS.map((k) => ({kind: 'key', keyType: k.type, key: k.pem}))
}

function passwordCredentials(user: string, lists: Lists, max: number): LoginCredential[] {
  return candidatesFor(user, lists).slice(0, max).map((c) => ({kind: 'password', password: c.password, source: c.source}))
}
