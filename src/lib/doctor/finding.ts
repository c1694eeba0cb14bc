export type Status = 'pass' | 'warn' | 'fail' | 'info' | 'unknown'
export type Group = 'disk' | 'memory' | 'gpu' | 'network' | 'io' | 'env'
export const GROUPS: Group[] = ['disk', 'memory', 'gpu', 'network', 'io', 'env']

export type Value = {value: number | string | boolean | null; unit?: string}

/** One line of doctor's report; the JSON form is this object as it is. */
export interface Finding {
  id: string
  group: Group
  status: Status
  title: string
  /** The key value(s), in words, for the one-line view. */
  summary: string
  values: Record<string, Value>
  /** What to do about a warning or failure, concretely. */
  fix?: string
  /** Shown with --verbose. */
  details?: string[]
}

export const bytes = (value: number | undefined): Value => ({value: value ?? null, unit: 'bytes'})

export function finding(group: Group, id: string, status: Status, title: string, summary: string, values: Record<string, Value> = {}, extra: Partial<Finding> = {}): Finding {
  return {id: `${group}.${id}`, group, status, title, summary, values, ...extra}
}
