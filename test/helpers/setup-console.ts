// oclif logs through console.log, which Jest wraps with stack traces; give tests the plain one.
import {Console} from 'node:console'

globalThis.console = new Console({stdout: process.stdout, stderr: process.stderr})
