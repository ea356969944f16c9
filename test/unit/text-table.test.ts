import {describe, expect, it} from 'vitest'

import {renderTable} from '../../src/text-table.js'

describe('renderTable (cli-table3, borderless)', () => {
  it('lays out columns two spaces apart under their header, with no trailing spaces', () => {
    expect(renderTable(['SLOT', 'NAME', 'STATE'], [['01', 'e195701-01', 'running'], ['02', 'e195701-02', 'shut off']]).split('\n')).toEqual([
      'SLOT  NAME        STATE',
      '01    e195701-01  running',
      '02    e195701-02  shut off',
    ])
  })

  it('wraps only the free-text columns, at word boundaries, to fit the width', () => {
    const fix = 'Remove the Vagrant insecure key from authorized_keys and push again with shien push'
    const out = renderTable(['ACCOUNT', 'SEVERITY', 'HOW TO FIX'], [['e195701', 'high', fix]], {width: 50, wrap: [2]})
    const lines = out.split('\n')
    expect(lines[0]).toBe('ACCOUNT  SEVERITY  HOW TO FIX')
    expect(lines[1].startsWith('e195701  high      Remove the')).toBe(true)
    expect(lines.length).toBeGreaterThan(3)
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(50)
    // Every word is still there, in order.
    expect(lines.slice(1).map((l) => l.slice(19).trim()).join(' ')).toBe(fix)
    // Without a width nothing wraps.
    expect(renderTable(['ACCOUNT', 'SEVERITY', 'HOW TO FIX'], [['e195701', 'high', fix]], {wrap: [2]}).split('\n')).toHaveLength(2)
  })
})

describe('vm list for people', () => {
  it('is a table with one row per VM, "-" where a VM has no debug stub or forward', async () => {
    const {describeList} = await import('../../src/virsh/list.js')
    const {DEFAULT_BLADE_CONFIG} = await import('../../src/config/blade-config.js')
    const text = describeList({
      account: 'e195701', role: 'student', limits: DEFAULT_BLADE_CONFIG.limits.default,
      domains: [
        {slot: '01', name: 'e195701-01', state: 'running', ssh: 'ssh -p 22001 vagrant@blade1'},
        {slot: '02', name: 'e195701-02', state: 'shut off'},
      ],
    })
    expect(text.split('\n')).toEqual([
      'SLOT  NAME        STATE     DEBUG  SSH',
      '01    e195701-01  running   -      ssh -p 22001 vagrant@blade1',
      '02    e195701-02  shut off  -      -',
    ])
  })
})
