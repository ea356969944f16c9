import {describe, expect, it} from 'vitest'

import {hostKeyFindings} from '../../../src/audit/host-keys.js'
import {AUDIT_EXIT, sortFindings, summarize} from '../../../src/audit/outcome.js'
import {renderAudit} from '../../../src/audit/render.js'
import type {AuditResult, Finding, ImageReport} from '../../../src/audit/types.js'

const image = (path: string, fps: string[], account?: string, slot?: string): ImageReport => ({
  path, account, slot, status: 'audited', applianceLaunches: 1, durationMs: 1, hostKeys: fps.map((f) => ({file: '/etc/ssh/k', type: 'ssh-ed25519', fingerprint: f})),
})

describe('hostKeyFindings', () => {
  it('flags images sharing a host key with each other or with a published box, and no others', () => {
    const images = [image('/u/a/01', ['SHA256:A', 'SHA256:X'], 'a', '01'), image('/u/b/02', ['SHA256:A'], 'b', '02'), image('/x/c.qcow2', ['SHA256:B'])]
    const found = hostKeyFindings(images, [{path: '/boxes/deb/1/box.img', status: 'audited', hostKeys: [{file: 'k', type: 't', fingerprint: 'SHA256:B'}]}])
    expect(found.map((f) => [f.image, f.code, f.detail])).toEqual([
      ['/u/a/01', 'shared-host-key', {fingerprints: ['SHA256:A'], sharedWith: ['b/02']}],
      ['/u/b/02', 'shared-host-key', {fingerprints: ['SHA256:A'], sharedWith: ['a/01']}],
      ['/x/c.qcow2', 'box-host-key', {fingerprints: ['SHA256:B'], boxes: ['/boxes/deb/1/box.img']}],
    ])
    expect(found.every((f) => f.severity === 'high')).toBe(true)
  })
})

const finding = (severity: Finding['severity'], account: string, code: Finding['code'] = 'insecure-key'): Finding =>
  ({code, severity, account, slot: '01', image: `/r/users/${account}/images/01.qcow2`, message: `m-${account}`, fix: 'f'})

describe('summarize and the exit status', () => {
  it('exits 10 on anything high, else 11 when something was not audited, else 0', () => {
    expect(summarize([finding('high', 'a')], 3)).toEqual({summary: {high: 1, medium: 0, low: 0, incomplete: 3, outcome: 'high'}, exitCode: 10})
    expect(summarize([finding('medium', 'a')], 1).exitCode).toBe(AUDIT_EXIT.incomplete)
    expect(summarize([finding('medium', 'a'), finding('low', 'b')], 0)).toEqual({summary: {high: 0, medium: 1, low: 1, incomplete: 0, outcome: 'clean'}, exitCode: 0})
  })

  it('sorts by severity, then account', () => {
    expect(sortFindings([finding('low', 'a'), finding('high', 'b'), finding('high', 'a')]).map((f) => `${f.severity}${f.account}`)).toEqual(['higha', 'highb', 'lowa'])
  })
})

describe('renderAudit', () => {
  it('prints one row per finding with paths under the root shortened, the problems, and the verdict', () => {
    const r: AuditResult = {
      mode: 'images', startedAt: '', durationMs: 1500, exitCode: 10, findings: [finding('high', 'e195701')],
      summary: {high: 1, medium: 0, low: 0, incomplete: 1, outcome: 'high'},
      images: [image('/r/users/e195701/images/01.qcow2', []), {...image('/r/x.qcow2', []), status: 'failed', error: {code: 'AUDIT_TIMEOUT', message: 'too slow'}}],
      boxes: [],
    }
    expect(renderAudit(r, '/r').split('\n')).toEqual([
      'ACCOUNT  SLOT  TARGET                   SEVERITY  FINDING    HOW TO FIX',
      'e195701  01    e195701/images/01.qcow2  high      m-e195701  f',
      '', 'Not (fully) audited:', '  /r/x.qcow2: too slow', '',
      'Audited 2 image(s) (1 audited, 0 refused, 1 failed), 0 published box(es) compared in 1.5 s: 1 high, 0 medium, 0 low; exit 10: high-severity findings.',
    ])
  })

  it('wraps the finding and how to fix it within their columns to the terminal\'s width', () => {
    const long = {...finding('high', 'e195701'), message: 'The Vagrant insecure public key is in /home/vagrant/.ssh/authorized_keys', fix: 'Remove it and push again with shien push --replace'}
    const r: AuditResult = {
      mode: 'images', startedAt: '', durationMs: 1500, exitCode: 10, findings: [long],
      summary: {high: 1, medium: 0, low: 0, incomplete: 0, outcome: 'high'}, images: [image('/r/users/e195701/images/01.qcow2', [])], boxes: [],
    }
    const table = renderAudit(r, '/r', 90).split('\n\n')[0].split('\n')
    expect(table.length).toBeGreaterThan(2)
    for (const line of table) expect(line.length).toBeLessThanOrEqual(90)
    expect(table[1]).toMatch(/^e195701  01    e195701\/images\/01\.qcow2  high      The Vagrant/)
    expect(renderAudit(r, '/r').split('\n')[1]).toContain(`${long.message}  ${long.fix}`)
  })
})
