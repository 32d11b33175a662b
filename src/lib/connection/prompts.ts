/** A question the ERP page would ask; the caller answers with the follow-up call in `action`. */
export interface Prompt {
  id: "default-sync-setup" | "enable-encryption";
  message: string;
  action: { method: "GET" | "POST" | "PUT"; href: string; body?: unknown };
}
