/** ERP record <-> CRM row, and what each side looked like when they were last synchronized. */
export interface Coupling {
  erpId: string;
  crmId: string;
  /**
   * The CRM id was chosen and recorded before the CRM write; a rerun after a crash upserts the same id,
   * so a crash never makes a duplicate.
   */
  pending: boolean;
  /** The ERP record's change stamp when last synchronized. */
  erpModifiedAt?: string;
  /** The CRM row's modifiedon when last synchronized. */
  crmModifiedOn?: string;
  /** Hash of the values last written to CRM (unchanged records are not written again). */
  crmHash?: string;
  /** Hash of the values last written to the ERP. */
  erpHash?: string;
}
