import {Command} from '@oclif/core'
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'
import {pathToFileURL} from 'node:url'

import {reportCommandError, wantsJson} from './error-output.js'

const require = createRequire(import.meta.url)

/**
 * A command of an oclif plugin (help, version, commands, autocomplete) that keeps shien's error
 * contract: the plugin's class with shien's error reporting, so `shien version --bogus --json`
 * prints the USAGE envelope and exits 2 like any shien command, not oclif's whole error object.
 */
export function withShienErrors(Base: Command.Class): Command.Class {
  // Abstract for the type checker only (run is the plugin's); at run time it is the plugin's class extended.
  abstract class WithShienErrors extends (Base as unknown as typeof Command) {
    // Some plugin commands (autocomplete:create) never parse their command line, so a wrong one
    // would pass unnoticed; parsing it here refuses it as it does for every other command.
    public override async init(): Promise<void> {
      await super.init()
      // The plugin's class itself: oclif spreads the options, which copies a class's own statics only.
      await this.parse(Base)
    }

    protected override async catch(error: Error & {exitCode?: number}): Promise<unknown> {
      return reportCommandError(this, error, wantsJson(this.argv))
    }
  }
  return WithShienErrors as unknown as Command.Class
}

/**
 * The command class in `file` of a plugin package. The plugins export only their entry module,
 * so the file is found beside it; the plugins' versions are pinned in package.json, and a unit
 * test runs every command loaded this way.
 */
export async function pluginCommand(pkg: string, file: string): Promise<Command.Class> {
  const entry = require.resolve(pkg)
  const module = (await import(pathToFileURL(join(dirname(entry), file)).href)) as {default: Command.Class}
  return withShienErrors(module.default)
}
