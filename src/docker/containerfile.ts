import {DockerfileParser, type Flag, type Instruction} from 'dockerfile-ast'

import {ShienError} from '../errors.js'

/** A span of the file, as the parser gives it (0-based line and character). */
type Range = NonNullable<ReturnType<Flag['getValueRange']>>

/**
 * Resolves an image a Containerfile names (FROM, COPY --from) to what the engine should use:
 * a shared image or one of the owner's own; anything else throws IMAGE_NOT_ALLOWED.
 */
export type ImageResolver = (raw: string) => Promise<string>

/**
 * The RUN --mount types a build may use: a tmpfs only. Bind mounts are refused whatever their
 * source: podman 4.3 / buildah 1.28 (Debian 12) follow a symlink named as the source on the
 * host (CVE-2024-1753), so a link to / in the context, or made by an earlier stage and bound
 * with from=, mounts the blade's / read-write into a step that runs as root.
 */
const MOUNT_TYPES = new Set(['tmpfs'])

/**
 * Checks a student's Containerfile before the engine sees it, and returns it with the images it
 * names replaced by the engine's names of them. The builder runs as root and can read every
 * image on the blade, so every way a Containerfile reaches another image or the host is either
 * checked or refused:
 * - FROM and COPY/ADD --from name `scratch`, an earlier stage, a shared image or the owner's
 *   own (`myimg` becomes `<account>-myimg`); never a variable, a registry or a digest.
 * - RUN --mount is a tmpfs or nothing: no `bind` (CVE-2024-1753, see MOUNT_TYPES), no `cache`
 *   (caches are shared by every build on the blade), no `secret` or `ssh`; RUN --network is
 *   `default` or `none`, RUN --security is refused.
 * - ONBUILD (triggers run later, unchecked) and heredocs are refused: older builders read a
 *   heredoc's lines as instructions, so the file must mean the same to every builder.
 */
export async function checkContainerfile(text: string, resolve: ImageResolver): Promise<string> {
  const file = DockerfileParser.parse(text)
  const edits: {range: Range; text: string}[] = []
  const stages: string[] = []
  let stageCount = 0
  for (const instruction of file.getInstructions()) {
    const keyword = instruction.getKeyword()
    const line = instruction.getRange().start.line + 1
    const refuse = (why: string, code = 'CONTAINERFILE_REFUSED') =>
      new ShienError(`Containerfile line ${line} (${keyword}) is refused: ${why}.`, {
        code,
        exit: 'refused',
        suggestions: ['See what a Containerfile may use: docs/ie-docker.md (build)'],
      })
    if (heredocsOf(instruction).length > 0) throw refuse('heredocs (<<) are not accepted; put the script in a file and COPY it')
    switch (keyword) {
      case 'FROM': {
        const from = instruction as Instruction & {getImage(): string | null; getImageRange(): Range | null; getBuildStage(): string | null}
        const image = from.getImage()
        const range = from.getImageRange()
        if (image === null || range === null) throw refuse('it names no image')
        if (image.includes('$')) throw refuse('the image cannot come from a variable', 'IMAGE_NOT_ALLOWED')
        if (image.toLowerCase() !== 'scratch' && !stages.includes(image.toLowerCase())) {
          edits.push({range, text: await resolveOrRefuse(resolve, image, refuse)})
        }
        stageCount++
        const stage = from.getBuildStage()
        if (stage !== null) stages.push(stage.toLowerCase())
        break
      }
      case 'COPY':
      case 'ADD':
        for (const flag of flagsOf(instruction)) {
          if (flag.getName().toLowerCase() !== 'from') continue
          const value = flag.getValue() ?? ''
          const range = flag.getValueRange()
          if (value.includes('$')) throw refuse('--from cannot come from a variable', 'IMAGE_NOT_ALLOWED')
          if (isStage(value, stages, stageCount)) continue
          if (range === null) throw refuse('--from names nothing')
          edits.push({range, text: await resolveOrRefuse(resolve, value, refuse)})
        }
        break
      case 'RUN':
        for (const flag of flagsOf(instruction)) checkRunFlag(flag, refuse)
        break
      case 'ONBUILD':
        throw refuse('ONBUILD triggers would run in later builds without these checks')
      default:
    }
  }
  return applyEdits(text, edits)
}

function checkRunFlag(flag: Flag, refuse: (why: string) => ShienError): void {
  const name = flag.getName().toLowerCase()
  const value = flag.getValue() ?? ''
  if (name === 'network') {
    if (value !== 'default' && value !== 'none') throw refuse(`--network=${value}: a build step uses the default network or none`)
    return
  }
  if (name !== 'mount') throw refuse(`RUN --${name} is not accepted (only --mount=type=tmpfs and --network=default|none)`)
  const options = new Map(value.split(',').map((o) => {
    const eq = o.indexOf('=')
    return eq === -1 ? [o.toLowerCase(), ''] : [o.slice(0, eq).toLowerCase(), o.slice(eq + 1)]
  }))
  // buildah's default type is bind.
  const type = (options.get('type') ?? 'bind').toLowerCase()
  if (type === 'bind') {
    throw refuse('bind mounts are not accepted in builds (through a link they can mount the blade\'s files: CVE-2024-1753); COPY what the step needs, or COPY --from=STAGE')
  }
  if (!MOUNT_TYPES.has(type)) {
    throw refuse(type === 'cache' ? 'cache mounts are shared by every build on the blade' : `--mount type=${type} is not offered (tmpfs only)`)
  }
  for (const key of ['from', 'source', 'src']) {
    if (options.has(key)) throw refuse(`--mount ${key}= is not accepted: a tmpfs mount starts empty`)
  }
}

/** An earlier stage, by name or by index. */
function isStage(value: string, stages: string[], stageCount: number): boolean {
  if (/^[0-9]+$/.test(value)) return Number(value) < stageCount
  return stages.includes(value.toLowerCase())
}

async function resolveOrRefuse(resolve: ImageResolver, image: string, refuse: (why: string, code?: string) => ShienError): Promise<string> {
  try {
    return await resolve(image)
  } catch (error) {
    if (error instanceof ShienError && error.code === 'IMAGE_NOT_ALLOWED') {
      throw refuse(`the image "${image}" is neither one offered on this blade nor one of yours`, 'IMAGE_NOT_ALLOWED')
    }
    throw error
  }
}

function flagsOf(instruction: Instruction): Flag[] {
  const withFlags = instruction as Instruction & {getFlags?: () => Flag[]}
  return withFlags.getFlags?.() ?? []
}

function heredocsOf(instruction: Instruction): unknown[] {
  const withHeredocs = instruction as Instruction & {getHeredocs?: () => unknown[]}
  return withHeredocs.getHeredocs?.() ?? []
}

/** Replaces each range (line/character positions, none overlapping) with its new text. */
function applyEdits(text: string, edits: {range: Range; text: string}[]): string {
  const lineStarts = [0]
  for (let i = 0; i < text.length; i++) if (text[i] === '\n') lineStarts.push(i + 1)
  const offset = (p: {line: number; character: number}) => lineStarts[p.line] + p.character
  let out = text
  for (const edit of [...edits].sort((a, b) => offset(b.range.start) - offset(a.range.start))) {
    out = out.slice(0, offset(edit.range.start)) + edit.text + out.slice(offset(edit.range.end))
  }
  return out
}
