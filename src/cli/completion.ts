import {readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'

import type {StoreData} from '../state/schema.js'

/**
 * Completion of names (pgs, snapshots, storages, PITR areas) on top of @oclif/plugin-autocomplete,
 * which completes commands and flags only: its scripts have no hook for values known at
 * completion time. zenith adds one to the scripts the plugin writes (see `extendCompletionScripts`):
 * where the plugin has nothing to offer, the shell asks `zenith complete -- WORDS...` for names.
 */
type Kind = 'pg' | 'pg-or-replica' | 'replica' | 'pg@' | 'snapshot' | 'snapshot-or-current' | 'storage' | 'pitr'

/** What each command's positional arguments name, in order. */
const ARGUMENTS: Record<string, Kind[]> = {
  'pg:checkout': ['snapshot'],
  'pg:destroy': ['pg'],
  'pg:logs': ['pg-or-replica'],
  'pg:promote': ['replica'],
  'pg:psql': ['pg-or-replica'],
  'pg:restart': ['pg-or-replica'],
  'pg:show': ['pg-or-replica'],
  'pg:start': ['pg'],
  'pg:stop': ['pg-or-replica'],
  'pg:url': ['pg-or-replica'],
  'snapshot:create': ['pg@'],
  'snapshot:destroy': ['snapshot'],
  'snapshot:diff': ['snapshot-or-current', 'snapshot-or-current'],
  'snapshot:export': ['snapshot'],
  'snapshot:push': ['snapshot'],
  'snapshot:show': ['snapshot'],
  'storage:detach': ['storage'],
  'storage:show': ['storage'],
  'pitr:destroy': ['pitr'],
  'pitr:extract-snapshot': ['pitr'],
  'pitr:gc': ['pitr'],
  'pitr:show': ['pitr'],
}

/** Flags whose value is a name, per command ('*': every command that has the flag). */
const FLAG_VALUES: Record<string, Record<string, Kind>> = {
  '*': {'--storage': 'storage', '-s': 'storage'},
  'pg:create': {'--snapshot': 'snapshot'},
  'pitr:create': {'--pg': 'pg'},
  'snapshot:list': {'--pg': 'pg'},
  'snapshot:pull': {'--from': 'storage'},
  'snapshot:push': {'--to': 'storage'},
}

export interface CommandShape {
  /** Flags that take a value (`--port`, `-s`): the word after one is its value, not an argument. */
  optionFlags: ReadonlySet<string>
}

/**
 * The names that may complete the last of `words` (the words after `zenith`, the last one
 * partial, maybe empty): none when the words are not yet a command, the cursor is on a flag, or
 * the argument there is not a name zenith knows (a new name, a URL, a number).
 */
export function completeNames(words: readonly string[], commands: Readonly<Record<string, CommandShape>>, data: StoreData): string[] {
  const current = words.at(-1) ?? ''
  const before = words.slice(0, -1)
  if (current.startsWith('-')) return []
  let id = ''
  let used = 0
  for (let count = 1; count <= before.length; count++) {
    const candidate = before.slice(0, count).join(':')
    if (commands[candidate]) {
      id = candidate
      used = count
    }
  }

  if (!id) return []
  const rest = before.slice(used)
  const previous = rest.at(-1)
  let kind: Kind | undefined
  if (previous?.startsWith('-') && !previous.includes('=') && commands[id].optionFlags.has(previous)) {
    kind = FLAG_VALUES[id]?.[previous] ?? FLAG_VALUES['*'][previous]
  } else {
    let position = 0
    for (let index = 0; index < rest.length; index++) {
      const word = rest[index]
      if (word.startsWith('-')) {
        if (!word.includes('=') && commands[id].optionFlags.has(word)) index++
        continue
      }

      position++
    }

    kind = ARGUMENTS[id]?.[position]
  }

  if (!kind) return []
  return namesOf(kind, data).filter((name) => name.startsWith(current)).sort()
}

function namesOf(kind: Kind, data: StoreData): string[] {
  const pgs = Object.values(data.pgs)
  switch (kind) {
    case 'pg': return pgs.filter((pg) => !pg.replica).map((pg) => pg.name)
    case 'pg-or-replica': return pgs.map((pg) => pg.name)
    case 'replica': return pgs.filter((pg) => pg.replica).map((pg) => pg.name)
    case 'pg@': return pgs.filter((pg) => !pg.replica).map((pg) => `${pg.name}@`)
    case 'snapshot': return Object.keys(data.snapshots)
    case 'snapshot-or-current': return [...Object.keys(data.snapshots), ...pgs.filter((pg) => !pg.replica).map((pg) => `${pg.name}@CURRENT`)]
    case 'storage': return Object.keys(data.storages)
    case 'pitr': return Object.keys(data.pitr)
  }
}

const MARK = '# zenith: names from the store'

/**
 * Adds name completion to the bash and zsh scripts @oclif/plugin-autocomplete has just written
 * under `cacheDir` (idempotent: a script that has it already is left alone). bash: a function
 * that runs the plugin's and, where that offers nothing, asks `bin complete`. zsh: the plugin
 * completes every argument with `_files`; zenith's function offers names first, files otherwise.
 */
export async function extendCompletionScripts(cacheDir: string, bin: string): Promise<void> {
  const functions = path.join(cacheDir, 'autocomplete', 'functions')
  await extend(path.join(functions, 'bash', `${bin}.bash`), (text) => `${text}
${MARK} (\`${bin} complete\`), where the plugin's function offers nothing
_${bin}_complete_names()
{
  _${bin}_autocomplete
  local cur="\${COMP_WORDS[COMP_CWORD]}"
  if [[ \${#COMPREPLY[@]} -eq 0 && "$cur" != -* ]]; then
    local IFS=$'\\n'
    COMPREPLY=($(${bin} complete -- "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
  fi
}
complete -o default -F _${bin}_complete_names ${bin}
`)
  await extend(path.join(functions, 'zsh', `_${bin}`), (text) => {
    // The file ends by calling _BIN (zsh runs an autoloaded file's body once): define ours before.
    const names = `${MARK} (\`${bin} complete\`), files where there are none
_${bin}_names() {
  local -a words_typed names
  words_typed=(\${(z)LBUFFER})
  [[ -z $PREFIX ]] && words_typed+=('')
  names=(\${(f)"$(${bin} complete -- \${words_typed[2,-1]} 2>/dev/null)"})
  if (( \${#names} )); then compadd -Q -- \${names[@]}; else _files; fi
}
`
    const body = text.replaceAll('"*: :_files"', `"*: :_${bin}_names"`)
    const call = body.lastIndexOf(`\n_${bin}\n`)
    return call < 0 ? `${body}\n${names}` : `${body.slice(0, call + 1)}${names}${body.slice(call + 1)}`
  })
}

async function extend(file: string, change: (text: string) => string): Promise<void> {
  const text = await readFile(file, 'utf8').catch(() => undefined)
  if (text === undefined || text.includes(MARK)) return
  await writeFile(file, change(text))
}
