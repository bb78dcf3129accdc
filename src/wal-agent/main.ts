#!/usr/bin/env node
/** The agent (agent.ts) as a script for node: `node main.js archive CONFIG %p %f | drain CONFIG AREA`. */
import {runAgent} from './agent.js'

runAgent(process.argv.slice(2)).then((code) => {
  process.exitCode = code
}, (error: unknown) => {
  process.stderr.write(`zenith: archiving failed: ${(error as Error).message}\n`)
  process.exitCode = 1
})
