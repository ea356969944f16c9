import {z} from 'zod'

/**
 * The schema of `.shien.json` (a project's, written by `shien init`) and of the user's config
 * (`$XDG_CONFIG_HOME/shien/config.json`): the same keys in both, the project's winning. A key
 * the schema does not name is an error. To add a key, add one line here; `shien config`,
 * the checks and docs/config.md follow.
 */
export const projectConfigSchema = z.strictObject({
  host: z.string().min(1).describe('The blade: a Host from ~/.ssh/config, HOST, USER@HOST or HOST:PORT (`--host` and `SHIEN_HOST` win).'),
  slot: z.string().min(1).describe('The VM slot on the blade, e.g. `02` (default `01`).'),
  name: z.string().min(1).describe('The box\'s name in `incoming/` on the blade (default: the project folder\'s name).'),
  box: z.string().min(1).describe('A .box file to push instead of running `vagrant package`, relative to the folder of the file that names it.'),
  base: z.string().min(1).describe('The course base box a push is a delta against, `ORG/NAME@VERSION` (default: the box Vagrant recorded).'),
  bladeCommand: z.string().min(1).describe('The blade\'s own shien command (default `shien`).'),
}).partial()

export type ProjectConfig = z.output<typeof projectConfigSchema>
