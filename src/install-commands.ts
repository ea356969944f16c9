import {PACKAGE_NAME} from './package-info.js'

/** The department's Homebrew tap (github.com/ie-ryukyu/homebrew-shien), which holds packaging/homebrew's formulas. */
export const HOMEBREW_TAP = 'ie-ryukyu/shien'

/** A released version as package.json spells it; anything else is not put into a command line. */
const VERSION = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/

/** The commands that install exactly `version` of shien on a laptop, as README "Install (students)" gives them. */
export function installCommands(version: string): {npm: string; homebrew: string} | undefined {
  if (!VERSION.test(version)) return undefined
  return {
    npm: `npm install -g ${PACKAGE_NAME}@${version}`,
    homebrew: `brew install ${HOMEBREW_TAP}/shien@${version}`,
  }
}

/** What a VERSION_MISMATCH suggests: installing the blade's version on the laptop, both ways. */
export function matchBladeSuggestions(bladeVersion: string): string[] {
  const commands = installCommands(bladeVersion)
  if (!commands) return ['Install the same shien version on your laptop as on the blade (shien --version on each), or ask an admin to update the blade.']
  return [
    `Install shien ${bladeVersion}, the blade's version, on this laptop: ${commands.npm}`,
    `or with Homebrew on a Mac: ${commands.homebrew}`,
    'or ask an admin to update the blade.',
  ]
}
