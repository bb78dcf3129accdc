/** zenith as a library: every domain function a command can call. */
export {type Zenith, openZenith, resolveHome} from './context.js'
export {EXIT_CODES, ExternalCommandError, ZenithError, isZenithError} from './errors.js'
export * from './pg/lifecycle.js'
export {readLog} from './pg/logs.js'
export {runPsql} from './pg/psql.js'
export type {OnProgress, ProgressEvent} from './progress.js'
export {recoverInterrupted} from './recovery.js'
export {listStorages, showStorage} from './storage/manage.js'
