import {describe, expect, it} from 'vitest'

import {gdbStubOf, withGdbStub} from '../../../src/virsh/gdb-stub.js'

// Shaped like `virsh dumpxml` output of a domain from templates/normal.xml.
const WITH_FORWARD = `<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>e195701-01</name>
  <devices>
    <serial type='pty'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-netdev'/>
    <qemu:arg value='user,id=shien0,hostfwd=tcp:127.0.0.1:22000-:22'/>
  </qemu:commandline>
</domain>
`
const WITHOUT_ARGS = `<domain type='qemu'>
  <name>e195701-02</name>
</domain>
`
const SOCKET = '/run/shien/debug/e195701/01.sock'

describe('the gdb stub in a domain definition', () => {
  it("adds -gdb unix:SOCKET after the template's own qemu args, and reads it back", () => {
    const xml = withGdbStub(WITH_FORWARD, {socket: SOCKET})
    expect(xml).toContain(`    <qemu:arg value='user,id=shien0,hostfwd=tcp:127.0.0.1:22000-:22'/>
    <qemu:arg value='-gdb'/>
    <qemu:arg value='unix:${SOCKET},server=on,wait=off'/>
  </qemu:commandline>
</domain>`)
    expect(gdbStubOf(xml)).toEqual({socket: SOCKET})
    expect(gdbStubOf(WITH_FORWARD)).toBeUndefined()
  })

  it('replaces an old stub rather than adding a second one, also a TCP stub of older versions', () => {
    const tcp = WITH_FORWARD.replace('  </qemu:commandline>', "    <qemu:arg value='-gdb'/>\n    <qemu:arg value='tcp:127.0.0.1:23000'/>\n  </qemu:commandline>")
    expect(gdbStubOf(tcp)).toBeUndefined()
    const replaced = withGdbStub(tcp, {socket: SOCKET})
    expect(replaced.match(/-gdb/g)).toHaveLength(1)
    expect(replaced).not.toContain('tcp:127.0.0.1:23000')
    expect(withGdbStub(tcp, undefined)).toBe(WITH_FORWARD)
  })

  it('removes the stub and nothing else', () => {
    const back = withGdbStub(withGdbStub(WITH_FORWARD, {socket: SOCKET}), undefined)
    expect(back).toBe(WITH_FORWARD)
    expect(withGdbStub(WITH_FORWARD, undefined)).toBe(WITH_FORWARD)
  })

  it('adds the qemu namespace and block to a domain without any, and takes them out again', () => {
    const xml = withGdbStub(WITHOUT_ARGS, {socket: SOCKET})
    expect(xml).toMatch(/^<domain xmlns:qemu='http:\/\/libvirt.org\/schemas\/domain\/qemu\/1.0' type='qemu'>/)
    expect(xml).toContain(`<qemu:arg value='unix:${SOCKET},server=on,wait=off'/>`)
    expect(gdbStubOf(xml)).toEqual({socket: SOCKET})
    expect(withGdbStub(xml, undefined)).not.toContain('qemu:arg')
  })
})
