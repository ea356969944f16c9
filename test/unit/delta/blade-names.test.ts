import {describe, expect, it} from 'vitest'

import {incomingPaths} from '../../../src/blade/incoming.js'
import {userPaths} from '../../../src/config/storage-layout.js'
import {DEFAULT_BLADE_CONFIG} from '../../../src/config/blade-config.js'
import {checkCatalogBox} from '../../../src/names.js'
import type {UploadKind} from '../../../src/protocol/blade-steps.js'

const ctx = {account: 'e195701', config: DEFAULT_BLADE_CONFIG, paths: userPaths('/gfs2/shien', 'e195701')}

describe('upload kinds in incoming/', () => {
  it('keeps <name>.box for a box (the default) and uses <name>.delta for a delta', () => {
    expect(incomingPaths(ctx, 'web')).toEqual({box: '/gfs2/shien/users/e195701/incoming/web.box', part: '/gfs2/shien/users/e195701/incoming/web.box.part'})
    expect(incomingPaths(ctx, 'web', 'delta')).toEqual({box: '/gfs2/shien/users/e195701/incoming/web.delta', part: '/gfs2/shien/users/e195701/incoming/web.delta.part'})
  })

  it('refuses any other kind, and names that are paths', () => {
    expect(() => incomingPaths(ctx, 'web', 'qcow2' as UploadKind)).toThrow(/not an upload kind/)
    expect(() => incomingPaths(ctx, '../web', 'delta')).toThrow(/cannot name a box/)
  })
})

describe('catalog box names asked of the blade', () => {
  it('accepts ORG/NAME and nothing that could leave <root>/boxes', () => {
    expect(checkCatalogBox('os101/debian12')).toBe('os101/debian12')
    for (const bad of ['../etc', 'os101/..', 'os101/.hidden', 'os101', 'a/b/c', '/abs/x', 'OS101/x']) {
      expect(() => checkCatalogBox(bad)).toThrow(/not a catalog box name/)
    }
  })
})
