/**
 * Run counts and the reasons a run gives, as the ERP's integration synchronization job log shows them. The planning itself is
 * field-level (sync/reconcile.ts).
 */
export interface SyncCounts {
  inserted: number;
  modified: number;
  deleted: number;
  unchanged: number;
  skipped: number;
  failed: number;
}

export const emptyCounts = (): SyncCounts => ({ inserted: 0, modified: 0, deleted: 0, unchanged: 0, skipped: 0, failed: 0 });

/** What a run says about a record it could not synchronize (BC's texts where BC has one). */
export const syncMessages = {
  notCoupled: "The record is not coupled, and the mapping synchronizes coupled records only.",
  conflict: (crm: string, erp: string) => `Cannot update the ${crm} record because it has a later modified date than the ${erp} record.`,
  coupledToDeletedCrm: (crm: string) => `The record is coupled to a ${crm} record that was deleted in Dynamics 365 Sales.`,
  coupledToDeletedErp: (erp: string) => `The record is coupled to an ERP ${erp} record that was deleted.`,
  rowOfOtherCompany: (crm: string) =>
    `The record is coupled to a ${crm} record that now belongs to another ERP company (its company column, bcbi_companyid, was changed). ` +
    `Give the row this company's id again, or uncouple the record here.`,
  notCoupledTarget: (table: string, id: string) => `The ${table} record ${id} is not coupled.`,
  noOptionMapping: (table: string, value: string) =>
    `The ${table} value ${value} has no option mapping: give the ERP ${table} record its crmOptionValue (the Dynamics 365 option it stands for).`,
} as const;
