#!/usr/bin/env node
// The npm bin and the blade's wrapper run this; the standalone tarballs' bin/shien runs
// bin/run.js (oclif's name for it) with their own node.
import './run.js'
