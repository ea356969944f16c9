/**
 * Vagrant's two published insecure public keys. Public base boxes authorize both for the
 * `vagrant` user; a VM reachable from the network must authorize neither. Matched by key
 * blob (the base64 field), never by whole line, since comments and options vary.
 */
export const VAGRANT_INSECURE_KEYS = [
  {
    type: 'ssh-rsa',
    blob:
      'AAAAB3NzaC1yc2EAAAABIwAAAQEA6NF8iallvQVp22WDkTkyrtvp9eWW6A8YVr+kz4TjGYe7gHzIw+niNltGEFHzD8+v1I2YJ6oXevct1YeS0o9HZyN1Q9qgCgzUFtdOKLv6IedplqoPkcmF0aYet2PkEDo3MlTBckFXPITAMzF8dJSIFo9D8HfdOV0IAdx4O7PtixWKn5y2hMNG0zQPyUecp4pzC6kivAIhyfHilFR61RGL+GPXQ2MWZWFYbAGjyiYJnAmCP3NOTd0jMZEnDkbUvxhMmBYSdETk1rRgm+R4LOzFUGaHqHDLKLX+FIPKcF96hrucXzcWyLbIbEgE98OHlnVYCzRdK8jlqm8tehUc9c9WhQ==',
  },
  {
    type: 'ssh-ed25519',
    blob: 'AAAAC3NzaC1lZDI1NTE5AAAAIN1YdxBpNlzxDqfJyw/QKow1F+wvG9hXGoqiysfJOn5Y',
  },
] as const

const INSECURE_BLOBS: ReadonlySet<string> = new Set(VAGRANT_INSECURE_KEYS.map((k) => k.blob))

/** True when any whitespace-separated field of an authorized_keys line is an insecure key blob. */
export function isInsecureKeyLine(line: string): boolean {
  return line.trim().split(/\s+/).some((field) => INSECURE_BLOBS.has(field))
}

/** The insecure keys as authorized_keys lines (what a base box ships). */
export function insecureAuthorizedKeys(): string {
  return VAGRANT_INSECURE_KEYS.map((k) => `${k.type} ${k.blob} vagrant insecure public key`).join('\n') + '\n'
}
