import type {PasswdEntry} from './edits.js'
import type {TextFile} from './guest-files.js'
import type {HostKeyChange} from './host-keys.js'

/** What hardening did; plain JSON (it is stored next to the image and printed by `--json`). */
export interface HardenReport {
  image: string
  distro: string
  user: string
  /** The machine the guest's init is built for (Vagrant's names), and which file told; undefined when no init is an ELF program. */
  architecture: {machine: string; init: string} | undefined
  /** authorized_keys files that held insecure keys, and how many lines were removed. */
  insecureKeysRemoved: {file: string; count: number}[]
  /** Symlinked or hard-linked .ssh / authorized_keys entries, removed without following them. */
  unsafeLinksRemoved: string[]
  keyInstalled: {file: string; added: boolean}
  /** Accounts whose password field is now `*` (no password can match; key login still works). */
  accountsLocked: string[]
  hostKeys: HostKeyChange
  machineId: {emptied: boolean; dbusRemoved: boolean}
  sshd: {file: string; settings: string[]; changed: boolean}
  /** True when an SELinux guest was told to relabel at boot (new files have no label yet). */
  selinuxRelabel: boolean
  durationMs: number
  applianceLaunches: number
}

/** What hardening read from the guest before changing anything. */
export interface GuestState {
  account: PasswdEntry
  /** Real paths (resolved inside the guest) of every account's home with a .ssh, root's included, and the account's. */
  homes: string[]
  targetHome: string
  shadow: TextFile
  /** shadow with the passwords replaced, computed up front so a missing entry refuses the image. */
  lockedShadow: {content: string; locked: string[]}
  sshdConfig: TextFile
  hostKeyNames: string[]
}
