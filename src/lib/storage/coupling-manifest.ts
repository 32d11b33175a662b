// The manifest row a wave writes before its CRM creates: the CRM ids it chose, by ERP id (coupling-repository.ts).

/** Entries per manifest row: 2,000 entries of a 20-character ERP id and a GUID are about 130,000 characters. */
export const manifestEntriesPerRow = 6_000;
const charsPerProperty = 30_000;

export interface Manifest {
  rowKey: string;
  etag: string;
  writtenAt: number;
  entries: [erpId: string, crmId: string][];
}

/** Each record's CRM id from the newest manifest that names it. */
export function pendingEntries(manifests: Manifest[]): Map<string, { crmId: string; writtenAt: number }> {
  const entries = new Map<string, { crmId: string; writtenAt: number }>();
  for (const manifest of [...manifests].sort((a, b) => a.writtenAt - b.writtenAt)) {
    for (const [erpId, crmId] of manifest.entries) entries.set(erpId, { crmId, writtenAt: manifest.writtenAt });
  }
  return entries;
}

/** A manifest's entries as JSON spread over string properties (64 KiB each). */
export function manifestColumns(entries: [string, string][]): Record<string, unknown> {
  const text = JSON.stringify(entries);
  const columns: Record<string, unknown> = { parts: Math.ceil(text.length / charsPerProperty) };
  for (let part = 0; part * charsPerProperty < text.length; part++) columns[`p${part}`] = text.slice(part * charsPerProperty, (part + 1) * charsPerProperty);
  return columns;
}

/** The entries of a manifest row read back. */
export function manifestEntries(row: Record<string, unknown>): [string, string][] {
  const text = Array.from({ length: Number(row.parts) }, (_, part) => String(row[`p${part}`] ?? "")).join("");
  return JSON.parse(text) as [string, string][];
}

/** Sorts before `<company>~<mapping>~`, so the couplings' range reads never see it (removeCompany's range does). */
export function manifestPartition(company: string, mapping: string): string {
  return `${company}~${mapping}!pending`;
}
