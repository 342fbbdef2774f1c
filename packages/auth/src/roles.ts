/**
 * The API's roles. viewer: reads and the event stream; editor: structure (pipelines, nodes, positions,
 * uploads, import); operator: execute, run all, run to here, cancel, retry. Any role implies viewer; editor
 * and operator are independent (an editor cannot run paid work, an operator cannot change the graph).
 */
export const ROLES = ["viewer", "editor", "operator"] as const;
export type Role = (typeof ROLES)[number];
export const ALL_ROLES: Role[] = [...ROLES];

export const isRole = (value: unknown): value is Role => typeof value === "string" && (ROLES as readonly string[]).includes(value);

/**
 * The roles a claim grants: an array of strings, or one space/comma-separated string (the `scope` style some
 * identity providers use). Unknown names are ignored; any known role adds viewer.
 */
export function rolesFromClaim(value: unknown): Set<Role> {
  const names = Array.isArray(value) ? value : typeof value === "string" ? value.split(/[\s,]+/) : [];
  const roles = new Set<Role>(names.filter(isRole));
  if (roles.size) roles.add("viewer");
  return roles;
}

/** Who made a request, as the verified token says. */
export interface Principal {
  /** The token's `sub` (a user or service id; never the token itself). */
  subject: string;
  roles: ReadonlySet<Role>;
  /** The only pipelines this principal may use (an API key limited to them); absent: every pipeline. */
  pipelines?: ReadonlySet<string>;
}

export const hasRole = (principal: Principal, role: Role) => principal.roles.has(role);
