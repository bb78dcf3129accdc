/**
 * How domain code reports long work without printing: the CLI renders steps as lines and bytes
 * as a bar (on stderr, only on a TTY, never under --json); library users pass their own callback.
 */
export type ProgressEvent =
  | {type: 'step'; message: string}
  | {type: 'bytes'; label: string; done: number; total?: number}
  | {type: 'bytes-end'; label: string; done: number}

export type OnProgress = (event: ProgressEvent) => void

export const silent: OnProgress = () => {}
