/**
 * The machine an ELF program is built for, from its first 20 bytes (the ELF identification and
 * e_machine): how harden checks a box's declared architecture against its disk without running
 * anything from it.
 */

/** ELF e_machine values (the System V ABI's registry) of the architectures Vagrant names. */
const MACHINES: Record<number, string> = {0x03: 'i386', 0x3e: 'amd64', 0x28: 'arm', 0xb7: 'arm64', 0x15: 'ppc64', 0x16: 's390x', 0x08: 'mips'}

/** The first bytes of an ELF file this needs: e_ident (16) and e_type (2) before e_machine (2). */
export const ELF_HEAD_BYTES = 20

export type ElfHead = {elf: true; machine: string; bits: 32 | 64; littleEndian: boolean} | {elf: false; reason: string}

/** The machine, named as Vagrant names architectures (amd64, arm64, i386, ...), or why the bytes are no ELF. */
export function elfMachine(head: Buffer): ElfHead {
  if (head.length < ELF_HEAD_BYTES) return {elf: false, reason: `it is ${head.length} bytes long`}
  if (!head.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) {
    return {elf: false, reason: head.subarray(0, 2).toString('latin1') === '#!' ? 'it is a script' : 'it is not an ELF file'}
  }
  const bits = head[4] === 1 ? 32 : head[4] === 2 ? 64 : undefined
  const littleEndian = head[5] === 1 ? true : head[5] === 2 ? false : undefined
  if (bits === undefined || littleEndian === undefined) return {elf: false, reason: 'its ELF header is malformed'}
  const code = littleEndian ? head.readUInt16LE(18) : head.readUInt16BE(18)
  // EM_PPC64 little-endian is what Vagrant calls ppc64le; 64-bit MIPS is mips64.
  let machine = MACHINES[code] ?? `ELF machine ${code}`
  if (machine === 'ppc64' && littleEndian) machine = 'ppc64le'
  if (machine === 'mips' && bits === 64) machine = 'mips64'
  return {elf: true, machine, bits, littleEndian}
}
