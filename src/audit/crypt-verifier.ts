/**
 * Adapter: checks password candidates against crypt(3) hashes with the host's libxcrypt, which
 * knows every scheme current distributions write (yescrypt, sha512crypt, sha256crypt, md5crypt,
 * bcrypt, and the old DES). Perl's built-in `crypt` is a direct call into that library, and
 * perl-base is essential in Debian, so no extra package is needed; one process verifies a whole
 * image's accounts. Candidates and hashes travel hex-encoded on stdin, never in argv (argv is
 * readable by every user of the blade in /proc).
 */

import {ShienError} from '../errors.js'
import {runTool} from '../process/run.js'

/** One question: does `candidate` produce `hash`? `group` stops further checks once one matched. */
export interface CryptCheck {
  group: string
  hash: string
  candidate: string
}

/** Per check: true (matches), false (does not), or undefined (libxcrypt does not know the scheme). */
export type CryptAnswer = boolean | undefined

// For each line "group TAB hash TAB candidate" (hex): 1 match, 0 no match, x unknown scheme,
// - skipped (its group already matched). crypt returns undef or a "*" string on an unknown setting.
const SCRIPT = String.raw`
my %done;
while (my $line = <STDIN>) {
  chomp $line;
  my ($g, $h, $c) = map { pack('H*', $_) } split(/\t/, $line, -1);
  if ($done{$g}) { print "-\n"; next; }
  my $r = crypt($c, $h);
  if (!defined($r) || $r =~ /^\*/) { print "x\n"; next; }
  if ($r eq $h) { $done{$g} = 1; print "1\n"; } else { print "0\n"; }
}
`

const hex = (s: string) => Buffer.from(s, 'utf8').toString('hex')

export async function verifyPasswords(checks: CryptCheck[], o: {signal?: AbortSignal} = {}): Promise<CryptAnswer[]> {
  if (checks.length === 0) return []
  const input = checks.map((c) => `${hex(c.group)}\t${hex(c.hash)}\t${hex(c.candidate)}\n`).join('')
  const r = await runTool('perl', ['-e', SCRIPT], {input, signal: o.signal, timeoutMs: 10 * 60_000})
  const lines = String(r.stdout).split('\n').filter((l) => l !== '')
  if (r.exitCode !== 0 || lines.length !== checks.length) {
    o.signal?.throwIfAborted()
    throw new ShienError(`Cannot verify password hashes with perl's crypt (libxcrypt): ${String(r.stderr).trim() || `exit ${r.exitCode}`}.`, {
      code: 'AUDIT_CRYPT_FAILED', suggestions: ['Check that perl-base and libcrypt1 are installed (apt-get install perl-base libcrypt1).'],
    })
  }
  // "-" (skipped) is reported as no match: an earlier candidate of the group already matched.
  return lines.map((l) => (l === '1' ? true : l === 'x' ? undefined : false))
}
