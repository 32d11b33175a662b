import { createHash } from "node:crypto";
import { DataverseError } from "./entity-store";
import type { TableMetadata } from "./metadata";

/**
 * Security roles as table privileges (https://learn.microsoft.com/power-platform/admin/security-roles-privileges).
 * A privilege is named as Dataverse names it: `prv` + access + the table's schema name (`prvWriteAccount`);
 * the organization table's are `prvReadOrganization` and `prvWriteOrganization`.
 */
export type Access = "Create" | "Read" | "Write" | "Delete" | "Append" | "AppendTo";
export const allAccess: readonly Access[] = ["Create", "Read", "Write", "Delete", "Append", "AppendTo"];

export interface RoleDefinition {
  name: string;
  /** Table logical name -> the access the role grants ("*" = every table). */
  tables: Record<string, readonly Access[]>;
  /** Miscellaneous privileges, e.g. prvActOnBehalfOfAnotherUser. */
  misc: readonly string[];
}

const full = allAccess;
const readOnly: readonly Access[] = ["Read"];
const readAppendTo: readonly Access[] = ["Read", "AppendTo"];
const salesWork: readonly Access[] = ["Create", "Read", "Write", "Append", "AppendTo"];

/**
 * The fixture's roles. System Administrator has every privilege. Salesperson follows the shipped role's
 * shape: works accounts, contacts, orders and invoices, reads the catalog and the organization, never
 * changes users, the organization or the catalog. Integration is the integration solution's role for the
 * connection user: exactly what the connector needs (README "Dataverse privileges of the integration user").
 */
export const roleDefinitions: readonly RoleDefinition[] = [
  { name: "System Administrator", tables: { "*": full }, misc: ["prvActOnBehalfOfAnotherUser"] },
  {
    name: "Salesperson",
    tables: {
      account: salesWork,
      contact: salesWork,
      salesorder: salesWork,
      salesorderdetail: salesWork,
      invoice: salesWork,
      invoicedetail: salesWork,
      systemuser: readAppendTo,
      role: readOnly,
      organization: readOnly,
      solution: readOnly,
      transactioncurrency: readAppendTo,
      uomschedule: readAppendTo,
      uom: readAppendTo,
      product: readAppendTo,
      pricelevel: readAppendTo,
      productpricelevel: readOnly,
      nav_connection: readOnly,
      nav_accountstatistics: readOnly,
      bcbi_company: readAppendTo,
    },
    misc: [],
  },
  {
    name: "Integration",
    tables: {
      account: full,
      contact: full,
      product: full,
      pricelevel: full,
      productpricelevel: full,
      uomschedule: full,
      uom: full,
      transactioncurrency: full,
      salesorder: full,
      salesorderdetail: full,
      invoice: full,
      invoicedetail: full,
      nav_connection: full,
      nav_accountstatistics: full,
      bcbi_company: full,
      systemuser: ["Read", "Write", "AppendTo"],
      role: readOnly,
      organization: ["Read", "Write"],
      solution: readOnly,
    },
    misc: ["prvActOnBehalfOfAnotherUser"],
  },
];

export function privilegeName(access: Access, table: TableMetadata): string {
  const schema = table.logicalName === "systemuser" ? "User" : table.logicalName.replace(/^[a-z]/, (first) => first.toUpperCase());
  return `prv${access}${schema}`;
}

export class SecurityModel {
  constructor(private readonly definitions: readonly RoleDefinition[] = roleDefinitions) {}

  roleNames(): string[] {
    return this.definitions.map((role) => role.name);
  }

  /** Whether any of the user's roles grants the access on the table. */
  has(roles: readonly string[], access: Access, table: TableMetadata): boolean {
    return this.definitions.some((role) => roles.includes(role.name) && (role.tables["*"] ?? role.tables[table.logicalName] ?? []).includes(access));
  }

  hasMisc(roles: readonly string[], privilege: string): boolean {
    return this.definitions.some((role) => roles.includes(role.name) && role.misc.includes(privilege));
  }

  privilegeCount(roles: readonly string[]): number {
    return this.definitions
      .filter((role) => roles.includes(role.name))
      .reduce((sum, role) => sum + Object.values(role.tables).flat().length + role.misc.length, 0);
  }

  /** 403 0x80040220 in Dataverse's words when the access is missing. */
  require(user: { systemuserid?: unknown; accessmode?: unknown }, roles: readonly string[], access: Access, table: TableMetadata): void {
    if (this.has(roles, access, table)) return;
    const privilege = privilegeName(access, table);
    throw new DataverseError(
      403,
      "0x80040220",
      `Principal user (Id=${String(user.systemuserid)}, type=8, roleCount=${roles.length}, privilegeCount=${this.privilegeCount(roles)}, accessMode=${Number(user.accessmode ?? 0)}), is missing ${privilege} privilege (Id=${privilegeId(privilege)}) on OTC=${table.objectTypeCode} for entity '${table.logicalName}' (LocalizedName='${table.logicalName}'). context.Caller=${String(user.systemuserid)}`,
    );
  }

  requireMisc(user: { systemuserid?: unknown; accessmode?: unknown }, roles: readonly string[], privilege: string): void {
    if (this.hasMisc(roles, privilege)) return;
    throw new DataverseError(
      403,
      "0x80040220",
      `Principal user (Id=${String(user.systemuserid)}, type=8, roleCount=${roles.length}, privilegeCount=${this.privilegeCount(roles)}, accessMode=${Number(user.accessmode ?? 0)}), is missing ${privilege} privilege (Id=${privilegeId(privilege)}). context.Caller=${String(user.systemuserid)}`,
    );
  }
}

function privilegeId(name: string): string {
  const hex = createHash("sha256").update(name).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
