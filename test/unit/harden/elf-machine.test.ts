import {readFile} from 'node:fs/promises'
import {fileURLToPath} from 'node:url'

import {describe, expect, it} from 'vitest'

import {ELF_HEAD_BYTES, elfMachine} from '../../../src/harden/elf-machine.js'

const fixture = (name: string) => fileURLToPath(new URL(`../../fixtures/${name}`, import.meta.url))
const head = async (path: string) => (await readFile(path)).subarray(0, ELF_HEAD_BYTES)

describe('the machine of an ELF program, from its first 20 bytes', () => {
  it('reads this host\'s /bin/true as amd64', async () => {
    expect(elfMachine(await head('/bin/true'))).toEqual({elf: true, machine: 'amd64', bits: 64, littleEndian: true})
  })

  it('reads Debian 12\'s arm64 /bin/true (test/fixtures/elf) as arm64', async () => {
    expect(elfMachine(await head(fixture('elf/true-arm64')))).toEqual({elf: true, machine: 'arm64', bits: 64, littleEndian: true})
  })

  it('reads 32-bit and big-endian headers by their own class and byte order', async () => {
    const i386 = Buffer.from(await head('/bin/true'))
    i386[4] = 1
    i386.writeUInt16LE(0x03, 18)
    expect(elfMachine(i386)).toMatchObject({machine: 'i386', bits: 32})
    const s390 = Buffer.from(await head('/bin/true'))
    s390[5] = 2
    s390.writeUInt16BE(0x16, 18)
    expect(elfMachine(s390)).toMatchObject({machine: 's390x', littleEndian: false})
  })

  it('tells a script, a short file and a non-ELF file apart, and never guesses a machine for them', () => {
    expect(elfMachine(Buffer.from('#!/bin/sh\nexec /lib/systemd/systemd\n'))).toEqual({elf: false, reason: 'it is a script'})
    expect(elfMachine(Buffer.from('\x7fELF'))).toEqual({elf: false, reason: 'it is 4 bytes long'})
    expect(elfMachine(Buffer.alloc(64))).toEqual({elf: false, reason: 'it is not an ELF file'})
    const broken = Buffer.alloc(20)
    Buffer.from('\x7fELF', 'latin1').copy(broken)
    expect(elfMachine(broken)).toEqual({elf: false, reason: 'its ELF header is malformed'})
  })
})
