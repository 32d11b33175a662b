import * as z from "zod";
import { erpSchemas } from "../model/erp-schemas";
import { FieldError, hiddenCharacters, inputMessages } from "../errors";
import {
  type Direction,
  type ErpCondition,
  type FieldMapping,
  type MappingDefinition,
  type MappingName,
  deletionConflictResolutions,
  updateConflictResolutions,
} from "./default-mappings";

/**
 * What an admin may change on a mapping (BC's Integration Table Mapping and Integration Field Mapping
 * cards), pure: the patch schema, the rules that need the mapping itself, and applying a patch.
 */
const directions = ["both", "toCrm", "fromCrm"] as const;
const directionRule = 'must be "both", "toCrm" or "fromCrm"';

/**
 * The directions each mapping can run in. The others would ask one side to create what it cannot: CRM users
 * are licensed people (not made by an integration), posted invoices exist only by posting in the ERP, and
 * currencies, units and price groups are set up in the ERP (BC's defaults are one-way for the same reasons).
 */
export const allowedDirections: Record<MappingName, readonly Direction[]> = {
  SALESPEOPLE: ["fromCrm"],
  CURRENCY: ["toCrm"],
  "UNIT OF MEASURE": ["toCrm"],
  CUSTOMER: directions,
  CONTACT: directions,
  "ITEM-PRODUCT": directions,
  "RESOURCE-PRODUCT": directions,
  "CUSTPRCGRP-PRICE": ["toCrm"],
  "POSTEDSALESINV-INV": ["toCrm"],
  "SALESPRC-PRODPRICE": ["toCrm"],
  "POSTEDSALESLINE-INV": ["toCrm"],
};

const constantValue = z.union([z.string().max(400, "must be at most 400 characters"), z.number().finite(), z.boolean(), z.null()], {
  error: "must be a text, a number, true/false or null",
});

const fieldPatch = z.strictObject({
  erp: z.string().min(1, "must name the ERP field of the field mapping"),
  enabled: z.boolean("must be true or false").optional(),
  direction: z.enum(directions, directionRule).optional(),
  /** null writes an empty value; "removeConstant": true takes the constant away. */
  constant: constantValue.optional(),
  removeConstant: z.literal(true, "must be true when given").optional(),
});

const erpCondition = z.strictObject({
  field: z.string().min(1, "must name an ERP field"),
  op: z.enum(["eq", "ne", "present"], 'must be "eq", "ne" or "present"'),
  value: z.union([z.string().max(100), z.number().finite(), z.boolean()], { error: "must be a text, a number or true/false" }).optional(),
});

export const mappingPatch = z
  .strictObject({
    direction: z.enum(directions, directionRule).optional(),
    /** OData $filter on the CRM rows; null removes it. */
    crmFilter: z.string().trim().min(1, "must not be empty; send null to remove the filter").max(1000, "must be at most 1000 characters").nullable().optional(),
    erpFilter: z.array(erpCondition).max(10, "must have at most 10 conditions").optional(),
    onlyCoupledRecords: z.boolean("must be true or false").optional(),
    updateConflictResolution: z.enum(updateConflictResolutions, `must be one of ${updateConflictResolutions.join(", ")}`).optional(),
    deletionConflictResolution: z.enum(deletionConflictResolutions, `must be one of ${deletionConflictResolutions.join(", ")}`).optional(),
    maxAttempts: z.number().int("must be a whole number").min(1, "must be at least 1").max(100, "must be at most 100").optional(),
    fields: z.array(fieldPatch).max(50, "must change at most 50 fields").optional(),
  })
  .refine((patch) => Object.keys(patch).length > 0, { message: inputMessages.nothingToChange });
export type MappingPatch = z.infer<typeof mappingPatch>;

/** Applies a validated patch to a mapping; the errors name the field and the rule (nothing is applied then). */
export function applyMappingPatch(definition: MappingDefinition, patch: MappingPatch): { definition: MappingDefinition } | { errors: FieldError[] } {
  const errors: FieldError[] = [];
  const next: MappingDefinition = { ...definition, fields: definition.fields.map((field) => ({ ...field })) };
  const { fields, crmFilter, erpFilter, ...settings } = patch;
  Object.assign(next, settings);
  if (crmFilter === null) delete next.crmFilter;
  else if (crmFilter !== undefined) {
    const problem = odataFilterProblem(crmFilter);
    if (problem) errors.push({ path: "crmFilter", message: problem });
    next.crmFilter = crmFilter;
  }
  const allowed = allowedDirections[definition.name];
  if (patch.direction && !allowed.includes(patch.direction)) {
    errors.push({ path: "direction", message: `must be ${allowed.map((d) => `"${d}"`).join(" or ")} for the ${definition.name} mapping` });
  }
  const schema = erpSchemas[definition.erpTable].shape as Record<string, z.ZodType>;
  if (erpFilter) {
    erpFilter.forEach((condition, index) => {
      // Own fields only: "__proto__" or "constructor" name no field of the table.
      const field = Object.hasOwn(schema, condition.field) ? schema[condition.field] : undefined;
      if (!field) errors.push({ path: `erpFilter.${index}.field`, message: `is not a field of the ERP ${definition.erpTable} table` });
      if (condition.op === "present") {
        if (condition.value !== undefined) errors.push({ path: `erpFilter.${index}.value`, message: 'must be left out with "present"' });
      } else if (condition.value === undefined) errors.push({ path: `erpFilter.${index}.value`, message: `is required with "${condition.op}"` });
      else if (field && !field.safeParse(condition.value).success) {
        // A value the field can never hold would silently match nothing (eq) or everything (ne).
        errors.push({ path: `erpFilter.${index}.value`, message: `is not a value the ERP field ${condition.field} can hold` });
      }
    });
    next.erpFilter = erpFilter as ErpCondition[];
  }
  const seen = new Map<string, number>();
  for (const [index, change] of (fields ?? []).entries()) {
    const path = `fields.${index}`;
    if (seen.has(change.erp)) {
      errors.push({ path: `${path}.erp`, message: `lists the field of fields.${seen.get(change.erp)} again; change a field once per request` });
      continue;
    }
    seen.set(change.erp, index);
    const field = next.fields.find((candidate) => candidate.erp === change.erp && !candidate.createOnly);
    if (!field) {
      errors.push({ path: `${path}.erp`, message: `is not a field of the ${definition.name} mapping (one of ${fieldNames(definition)})` });
      continue;
    }
    applyFieldPatch(definition, field, change, path, errors);
    // The create-only twin of a field (a unit group's base unit name) follows its main field.
    for (const twin of next.fields)
      if (twin !== field && twin.erp === field.erp && twin.createOnly && change.enabled !== undefined) twin.enabled = change.enabled;
  }
  return errors.length > 0 ? { errors } : { definition: next };
}

/** Applies one field's change, then checks the field as it ends up (a later direction must not void a checked constant). */
function applyFieldPatch(definition: MappingDefinition, field: FieldMapping, change: z.infer<typeof fieldPatch>, path: string, errors: FieldError[]): void {
  if (change.constant !== undefined && change.removeConstant) errors.push({ path: `${path}.constant`, message: "cannot be set and removed at once" });
  if (change.enabled !== undefined) field.enabled = change.enabled;
  if (change.direction !== undefined) field.direction = change.direction;
  if (change.removeConstant) delete field.constant;
  if (change.constant !== undefined) field.constant = change.constant;

  const shape = erpSchemas[definition.erpTable].shape as Record<string, z.ZodType>;
  const schema = Object.hasOwn(shape, field.erp) ? shape[field.erp] : undefined;
  if (field.enabled === false && schema && !schema.safeParse(undefined).success) {
    errors.push({ path: `${path}.enabled`, message: `cannot be false: ${field.erp} is required in the ERP ${definition.erpTable} table` });
  }
  const allowed = allowedDirections[definition.name];
  if (change.direction !== undefined && change.direction !== "both" && !allowed.includes(change.direction)) {
    errors.push({ path: `${path}.direction`, message: `must be "both" or ${allowed.map((d) => `"${d}"`).join(" or ")} in the ${definition.name} mapping` });
  }
  if (field.constant === undefined) return;
  if (field.lookup) errors.push({ path: `${path}.constant`, message: "cannot be set on a lookup field (it points to a coupled record)" });
  if (field.direction === "both") {
    errors.push(
      change.constant !== undefined
        ? { path: `${path}.constant`, message: "needs a one-way field: set direction to toCrm or fromCrm" }
        : { path: `${path}.direction`, message: "must be one way (toCrm or fromCrm) while the field has a constant" },
    );
  }
  if (field.direction === "fromCrm" && schema) {
    const checked = schema.safeParse(field.constant);
    if (!checked.success)
      errors.push({ path: `${path}.constant`, message: `is not a valid ERP ${field.erp}: ${checked.error.issues[0]?.message ?? "invalid"}` });
  }
}

function fieldNames(definition: MappingDefinition): string {
  return [...new Set(definition.fields.filter((field) => !field.createOnly).map((field) => field.erp))].join(", ");
}

/**
 * Cheap checks of an OData $filter before Dataverse sees it: balanced quotes and parentheses, no query
 * options smuggled in. Dataverse itself is asked too when the connection is enabled.
 */
export function odataFilterProblem(filter: string): string | undefined {
  if (hiddenCharacters.test(filter)) return inputMessages.hiddenCharacters;
  let depth = 0;
  let quoted = false;
  for (const char of filter) {
    if (char === "'") quoted = !quoted;
    else if (quoted) continue;
    // Outside text values: & # and $ would end the $filter and start other query options.
    else if (char === "&" || char === "#" || char === "$") return "must be a $filter expression only (no & # or $ outside quoted text)";
    else if (char === "(") depth++;
    else if (char === ")" && --depth < 0) return "has a ) without its (";
  }
  if (quoted) return "has a text value without its closing '";
  if (depth !== 0) return "has a ( without its )";
  return undefined;
}
