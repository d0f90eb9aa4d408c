import { ActionName, ToolName } from './events.js'

export interface ToolAction {
  readonly tool: string
  readonly action: string
}

/** The name of a workflow, a registered tool action: `<tool>.<action>` (neither name holds a '.'). */
export const workflowName = ({ tool, action }: ToolAction): string => `${tool}.${action}`

/** The tool and action a workflow name names; null when it names none (`WorkflowName` validates one at the edge). */
export const toolActionOf = (name: string): ToolAction | null => {
  const [tool, action, ...rest] = name.split('.')
  if (rest.length > 0 || !ToolName.safeParse(tool).success || !ActionName.safeParse(action).success)
    return null
  return { tool: String(tool), action: String(action) }
}
