/**
 * Commands of the product's surface (DESIGN.md, from the proposal) that this version does not
 * have yet. A user who types one gets "not available yet", not a typo suggestion: `pitr create`
 * is not a misspelt `pg create`. Remove an entry when its command ships.
 */
export const PLANNED_COMMANDS: readonly string[] = []

/** The planned command (or topic of planned commands, like `pitr`) that `id` names, if any. */
export function plannedCommand(id: string, shipped: readonly string[], surface: readonly string[] = PLANNED_COMMANDS): string | undefined {
  const planned = surface.filter((command) => !shipped.includes(command))
  if (planned.includes(id)) return id
  // A whole topic still to come (`pitr`), not one that has shipped commands (`pg`).
  const inTopic = (commands: readonly string[]) => commands.some((command) => command.startsWith(`${id}:`))
  return inTopic(planned) && !inTopic(shipped) ? id : undefined
}
