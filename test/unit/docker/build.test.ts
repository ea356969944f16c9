import {describe, expect, it} from 'vitest'

import {parseBuildArgs} from '../../../src/docker/build-args.js'
import {parseDockerInvocation, wantsJson} from '../../../src/docker/cli.js'
import {checkContainerfile} from '../../../src/docker/containerfile.js'
import {ShienError} from '../../../src/errors.js'

/** Shared: `base`; the owner's: `mine` (as the engine names it, e195701-mine). */
const resolve = async (raw: string) => {
  if (raw === 'base' || raw === 'base:latest') return 'localhost/base:latest'
  if (raw === 'mine') return 'e195701-mine:latest'
  throw new ShienError(`not offered: ${raw}`, {code: 'IMAGE_NOT_ALLOWED', exit: 'refused'})
}
const check = (text: string) => checkContainerfile(text, resolve)
const refusedWith = (code: string, message?: RegExp) => expect.objectContaining({code, ...(message ? {message: expect.stringMatching(message)} : {})})

describe('checkContainerfile', () => {
  it('rewrites shared and own images to the engine names and keeps the rest of the file as written', async () => {
    const text = '# a comment\nFROM base AS build\nRUN echo hi > /x\nFROM mine\nCOPY --from=build /x /y\nCOPY --from=0 /x /z\nCOPY --from=base /etc/hostname /h\nCMD ["/bin/sh"]\n'
    expect(await check(text)).toBe(
      '# a comment\nFROM localhost/base:latest AS build\nRUN echo hi > /x\nFROM e195701-mine:latest\nCOPY --from=build /x /y\nCOPY --from=0 /x /z\nCOPY --from=localhost/base:latest /etc/hostname /h\nCMD ["/bin/sh"]\n',
    )
  })

  it('follows line continuations and the escape directive the way the builder does', async () => {
    expect(await check('# escape=`\nFROM ba`\nse\nRUN echo `\n ok\n')).toBe('# escape=`\nFROM localhost/base:latest\nRUN echo `\n ok\n')
    await expect(check('FROM base\nRUN echo \\\n  && true\nfrom other\n')).rejects.toEqual(refusedWith('IMAGE_NOT_ALLOWED', /line 4 \(FROM\).*"other"/))
  })

  it('accepts scratch and stages named before, in any case', async () => {
    expect(await check('FROM scratch AS Empty\nFROM empty\n')).toBe('FROM scratch AS Empty\nFROM empty\n')
  })

  it.each([
    ['another account image', 'FROM e195702-secret\n', 'IMAGE_NOT_ALLOWED'],
    ['a registry image', 'FROM docker.io/library/debian:12\n', 'IMAGE_NOT_ALLOWED'],
    ['an image from a variable', 'ARG IMG=base\nFROM $IMG\n', 'IMAGE_NOT_ALLOWED'],
    ['an image from a braced variable', 'ARG IMG=base\nFROM ${IMG}\n', 'IMAGE_NOT_ALLOWED'],
    ['COPY --from another account image', 'FROM base\nCOPY --from=e195702-secret /etc/shadow /s\n', 'IMAGE_NOT_ALLOWED'],
    ['ADD --from a variable', 'FROM base\nARG X=e195702-secret\nADD --from=$X /a /b\n', 'IMAGE_NOT_ALLOWED'],
    ['COPY --from a later stage index', 'FROM base\nCOPY --from=1 /a /b\nFROM base\n', 'IMAGE_NOT_ALLOWED'],
    ['a cache mount', 'FROM base\nRUN --mount=type=cache,target=/root/.cache true\n', 'CONTAINERFILE_REFUSED'],
    ['a secret mount', 'FROM base\nRUN --mount=type=secret,id=x true\n', 'CONTAINERFILE_REFUSED'],
    ['a bind mount from another image', 'FROM base\nRUN --mount=type=bind,from=e195702-secret,target=/m true\n', 'CONTAINERFILE_REFUSED'],
    ['the host network', 'FROM base\nRUN --network=host true\n', 'CONTAINERFILE_REFUSED'],
    ['RUN --security', 'FROM base\nRUN --security=insecure true\n', 'CONTAINERFILE_REFUSED'],
    ['ONBUILD', 'FROM base\nONBUILD RUN --mount=type=cache,target=/x true\n', 'CONTAINERFILE_REFUSED'],
    ['a heredoc', 'FROM base\nRUN <<EOF\necho hi\nEOF\n', 'CONTAINERFILE_REFUSED'],
    ['a heredoc that an older builder would read as FROM', 'FROM base\nRUN cat <<EOF\nFROM e195702-secret\nEOF\n', 'CONTAINERFILE_REFUSED'],
  ])('refuses %s', async (_what, text, code) => {
    await expect(check(text)).rejects.toEqual(refusedWith(code))
  })

  it('lets a RUN use a tmpfs or no network', async () => {
    const text = 'FROM base\nRUN --mount=type=tmpfs,target=/t --network=none true\n'
    expect(await check(text)).toBe(text.replaceAll('FROM base', 'FROM localhost/base:latest'))
  })

  // CVE-2024-1753: buildah 1.28 follows a link named as a bind source on the host.
  it.each([
    ['a bind of the context', 'FROM base\nRUN --mount=type=bind,source=link,target=/host,rw true\n'],
    ['a bind without a type (bind is the default)', 'FROM base\nRUN --mount=target=/src true\n'],
    ['a bind from an earlier stage', 'FROM base AS s\nFROM base\nRUN --mount=type=bind,from=s,source=/link,target=/host,rw true\n'],
    ['a bind in upper case, after a tmpfs', 'FROM base\nrun --mount=type=tmpfs,target=/t --mount=TYPE=BIND,source=l,target=/h true\n'],
    ['a bind on a continued line', 'FROM base\nRUN \\\n  --mount=type=bind,source=l,target=/h \\\n  true\n'],
    ['a mount type from a variable', 'FROM base\nARG T=bind\nRUN --mount=type=$T,source=l,target=/h true\n'],
    ['a tmpfs with a source', 'FROM base AS s\nFROM base\nRUN --mount=type=tmpfs,from=s,source=/,target=/h true\n'],
  ])('refuses %s', async (_what, text) => {
    await expect(check(text)).rejects.toEqual(refusedWith('CONTAINERFILE_REFUSED', /is refused/))
  })
})

describe('parseBuildArgs', () => {
  it('takes the allow-listed flags and one folder', () => {
    expect(parseBuildArgs(['-t', 'myimg:1.0', '-f', 'sub/Containerfile', '--build-arg', 'A=1', '--build-arg=B=2', '--target=final', '--no-cache', '.'])).toEqual({
      tag: 'myimg:1.0', file: 'sub/Containerfile', buildArgs: ['A=1', 'B=2'], target: 'final', noCache: true, context: '.',
    })
  })

  it.each([['--volume', '/etc:/etc'], ['-v=/:/host'], ['--network', 'host'], ['--cap-add', 'SYS_ADMIN'], ['--secret', 'id=x,src=/etc/shadow'], ['--pull=always'], ['--isolation', 'chroot'], ['--squash']])(
    'refuses %s',
    (...flag) => expect(() => parseBuildArgs(['-t', 'x', ...flag, '.'])).toThrow(refusedWith('FLAG_REFUSED')),
  )

  it('needs a tag and exactly one folder, not standard input', () => {
    expect(() => parseBuildArgs(['.'])).toThrow(/needs -t NAME/)
    expect(() => parseBuildArgs(['-t', 'x'])).toThrow(/one context folder/)
    expect(() => parseBuildArgs(['-t', 'x', 'a', 'b'])).toThrow(/one context folder/)
    expect(() => parseBuildArgs(['-t', 'x', '-'])).toThrow(/not from standard input/)
    expect(() => parseBuildArgs(['-t', 'x', '--build-arg', '1=2', '.'])).toThrow(/NAME=VALUE/)
  })

  it('is reached through ie-docker build, whose --json after the command is the engine-side argument list', () => {
    expect(parseDockerInvocation(['--json', 'build', '-t', 'x', '.'])).toMatchObject({command: 'build', json: true, request: {tag: 'x', context: '.'}})
    expect(wantsJson(['build', '-t', 'x', '--json', '.'])).toBe(false)
    expect(() => parseDockerInvocation(['build', '-t', 'x', '--json', '.'])).toThrow(refusedWith('FLAG_REFUSED'))
  })
})
