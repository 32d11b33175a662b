/** The value of each mapped field as last synchronized, in ERP terms (lookups as ERP codes), by ERP field name. */
export type SyncedValues = Record<string, unknown>;

/** ERP record <-> CRM row, and what each mapped field looked like when they were last synchronized. */
export interface Coupling {
  erpId: string;
  crmId: string;
  /**
   * The CRM id was chosen and recorded before the CRM write; a rerun after a crash upserts the same id,
   * so a crash never makes a duplicate.
   */
  pending: boolean;
  /**
   * Field-level state: a side changed a field when its value differs from this. Absent on couplings that
   * never completed a synchronization (made by hand, or before field-level state existed): the mapping's
   * main direction then decides where values differ.
   */
  synced?: SyncedValues;
  /** The ERP record's change stamp when last synchronized. */
  erpModifiedAt?: string;
  /** The CRM row's modifiedon when last synchronized. */
  crmModifiedOn?: string;
}
