/**
 * The steps of `shien blade`, the blade side of a push that the laptop runs over SSH as the
 * student. Both ends compile against this map: each command in `commands/blade/` returns its
 * step's result and takes its step's flags, and the laptop's `BladeClient.call` is typed by it.
 * Bump BLADE_PROTOCOL when a step's flags or result change shape; both ends refuse a peer that
 * speaks another number.
 */
export const BLADE_PROTOCOL = 4

export interface HelloResult {
  version: string
  protocol: number
  account: string
  home: string
  /** The guest architectures the blade runs natively (KVM) and emulated (TCG); absent from older blades. */
  arch?: {native: Array<'x86_64' | 'aarch64'>; emulated: Array<'x86_64' | 'aarch64'>}
  /** The room on the storage of the caller's folder, so a push can be refused before `vagrant package`; absent from older blades. */
  space?: StorageSpace
  /**
   * The blades sharing the storage and which of them answered, when the blade's config has a
   * `cluster` section (docs/cluster.md); absent without one and from older blades. The laptop
   * checks it (client/cluster-answer.ts): it comes from another machine.
   */
  cluster?: ClusterView
}

/**
 * What a blade tells the laptop of its cluster: each blade's name and SSH address, its own name,
 * and what placement reads of each entry (`native`, `keepFreeMiB`, `maxVms`; absent from the
 * blades that answered before push placed VMs).
 */
export interface ClusterView {
  self: string
  blades: Array<{name: string; ssh: string; native?: Array<'x86_64' | 'aarch64'>; keepFreeMiB?: number; maxVms?: number}>
}

export interface StorageSpace {
  /** Bytes free to the caller. */
  freeBytes: number
  /** The part of them that must stay free for everyone's VMs (push.reserveGiB). */
  reserveBytes: number
}

export interface PrepareResult {
  partPath: string
  boxPath: string
  partSize: number
  /** Size of a complete upload of that name already in place (a push that failed after its upload); 0 when none. */
  boxSize: number
  freeBytes: number
  /** The caller's uploads removed from incoming/ for being older than push.keepIncomingDays. */
  removedOld: string[]
}

export interface HashResult {
  /** sha256 of the part's first `prefix` bytes. */
  prefix: string
  blocks: string[]
}

export interface CommitResult {
  boxPath: string
  size: number
}

export interface ConvertResult {
  /** The new image, under a temporary name until every later step passed. */
  image: string
  disk: string
  virtualSize: number
  ignoredDisks: string[]
  /**
   * The image is the hardened result of this same upload and key, finished on the blade by a
   * push whose connection went: nothing was converted, and harden has nothing left to do.
   */
  hardened?: HardenResult
}

export interface HardenResult {
  /** Where the record of what was done is kept, next to the image. */
  record: string
  report: object
  /**
   * The public halves of the host keys harden made for the guest (`TYPE BASE64`, one per key
   * type): the laptop records them in known_hosts under the VM's alias, so a first login asks nothing.
   */
  hostKeys: string[]
}

/** The public host keys harden made for a slot's VM, from the slot's record (empty when it holds none). */
export interface HostKeysResult {
  slot: string
  hostKeys: string[]
}

/**
 * Whether the blade has a course base box (published with `shien box publish`) for a delta
 * push, and its block manifest (docs/delta.md), base64; or, in one line, why not.
 */
export type BaseResult =
  | {
    available: true
    box: string
    version: string
    /** The architecture whose base this is (Vagrant's name); blades older than several architectures per version leave it out. */
    architecture?: string
    /** The firmware the base's platform record names, when publish wrote one. */
    firmware?: 'bios' | 'efi'
    path: string
    virtualSize: number
    diskHash: string
    manifest: string
  }
  | {available: false; reason: string}

/** What `install` does to a slot, and what each action reports. */
export interface InstallResults {
  install: {image: string; record: string; previous: boolean}
  rollback: {restored: boolean}
  tidy: {tidy: true}
}

/** What `shien cloud push` reports (its --json object, from the laptop or the blade). */
export interface CloudPushResult {
  archive: {id: string; name: string; zone: string; sizeGiB: number; sizeMB: number; availability: string}
  image: {path: string; format: 'raw' | 'qcow2'; virtualSize: number; sentBytes: number}
  upload: {attempts: number; ms: number; mibPerSecond: number; reply: string}
  timings: Array<{step: 'convert' | 'create' | 'upload' | 'wait'; ms: number}>
}

/** Who holds a slot's push lock, as written into it (`.push-<slot>.lock` in your folder). */
export interface SlotHolder {
  slot: string
  /** When the holding push took the lock (ISO, the blade's clock). */
  startedAt: string
  /** The laptop's host name, as the laptop named itself. */
  host?: string
  /** The address the push's connection came from (sshd's SSH_CLIENT). */
  from?: string
  pid: number
}

/** What `lock` reports when it lets the slot go (its stdin ended). */
export interface LockResult {
  slot: string
  startedAt: string
  heldMs: number
}

export type UploadKind = 'box' | 'delta'

/** Each step's flags (as `--name value` on the command line) and its JSON result. */
export interface BladeSteps {
  hello: {flags: Record<string, never>; result: HelloResult}
  /**
   * Holds the slot's push lock from the moment it prints a `locked` event until its stdin ends;
   * refused at once with SLOT_BUSY while another push holds it.
   */
  lock: {flags: {slot: string; host?: string}; result: LockResult}
  /** `kind` names what is uploaded: a whole box (`<name>.box`) or a delta (`<name>.delta`). */
  prepare: {flags: {name: string; size: number; kind?: UploadKind; slot?: string}; result: PrepareResult}
  hash: {flags: {name: string; prefix: number; 'block-size': number; kind?: UploadKind; complete?: boolean}; result: HashResult}
  commit: {flags: {name: string; size: number; kind?: UploadKind}; result: CommitResult}
  /** With `sha256` and `public-key`, a hardened result of the same upload and key already staged is given back as it is. */
  convert: {flags: {name: string; slot: string; sha256?: string; 'public-key'?: string}; result: ConvertResult}
  /** `architecture`: the box's (Vagrant's name), when it declares one other than amd64; it picks that architecture's base. */
  base: {flags: {box: string; version: string; architecture?: string}; result: BaseResult}
  /**
   * Makes the slot's staged image a qcow2 overlay of the base with the delta's blocks; then harden as after convert.
   * `architecture` picks the base as for `base`; with `architecture-source` it is what the box declares, and
   * `firmware` what it declares (the base's firmware otherwise), recorded for harden and ie-virsh as convert records them.
   */
  'apply-delta': {
    flags: {name: string; slot: string; box: string; version: string; sha256?: string; 'public-key'?: string; architecture?: string; 'architecture-source'?: string; firmware?: 'bios' | 'efi'}
    result: ConvertResult
  }
  harden: {flags: {slot: string; 'public-key': string; box?: string; sha256?: string}; result: HardenResult}
  'host-keys': {flags: {slot: string}; result: HostKeysResult}
  install: {
    flags: {slot: string; action: keyof InstallResults; installed?: boolean; name?: string}
    result: InstallResults[keyof InstallResults]
  }
  'cloud-push': {
    flags: {slot: string; zone: string; name: string; description?: string; 'keep-on-failure'?: boolean}
    result: CloudPushResult
  }
}

export type BladeStep = keyof BladeSteps
export type StepFlags<S extends BladeStep> = BladeSteps[S]['flags']

/** A step's result; for `install`, the one its action gives. */
export type StepResult<S extends BladeStep, F = StepFlags<S>> = S extends 'install'
  ? F extends {action: infer A extends keyof InstallResults}
    ? InstallResults[A]
    : never
  : BladeSteps[S]['result']

/** A step's flags as arguments: `--name value`, `--flag` for true, nothing for false or unset. */
export function stepArgs(flags: Record<string, string | number | boolean | undefined>): string[] {
  const argv: string[] = []
  for (const [name, value] of Object.entries(flags)) {
    if (value === undefined || value === false) continue
    argv.push(`--${name}`)
    if (value !== true) argv.push(String(value))
  }
  return argv
}
