/**
 * Commands of the product's surface (DESIGN.md, from the proposal) that this version does not
 * have yet. A user who types one gets "not available yet", not a typo suggestion: `pitr create`
 * is not a misspelt `pg create`. Remove an entry when its command ships.
 */
export const PLANNED_COMMANDS = [
  'autocomplete', 'version',
] as const

/** The planned command (or topic of planned commands, like `pitr`) that `id` names, if any. */
export function plannedCommand(id: string, shipped: readonly string[]): string | undefined {
  const planned = PLANNED_COMMANDS.filter((command) => !shipped.includes(command))
  if (planned.includes(id as (typeof planned)[number])) return id
  // A whole topic still to come (`pitr`), not one that has shipped commands (`pg`).
  const inTopic = (commands: readonly string[]) => commands.some((command) => command.startsWith(`${id}:`))
  return inTopic(planned) && !inTopic(shipped) ? id : undefined
}
