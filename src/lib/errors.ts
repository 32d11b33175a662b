import type { z } from "zod";

/**
 * Refusals of the domain, in its own words: what was wrong, not which HTTP status says so. The HTTP layer
 * (http/problem.ts) turns each kind into its status and problem+json; queued work simply fails with it.
 */
export interface FieldError {
  /** The field as the caller wrote it (dot-joined), or "body" for a rule on the whole input. */
  path: string;
  message: string;
}

export type RefusalKind = "invalid" | "not-found" | "conflict" | "stale" | "forbidden" | "unprocessable" | "unauthorized";

export class Refusal extends Error {
  constructor(
    readonly kind: RefusalKind,
    message: string,
    readonly errors: FieldError[] = [],
    /** Extra facts for the caller (e.g. a failed connection test). */
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "Refusal";
  }
}

export const invalid = (errors: FieldError[]) => new Refusal("invalid", errors.map((error) => `${error.path || "body"}: ${error.message}`).join(" "), errors);
export const notFound = (message: string) => new Refusal("not-found", message);
export const conflict = (message: string, extensions: Record<string, unknown> = {}) => new Refusal("conflict", message, [], extensions);
/** The caller's copy is out of date (a stale ETag, or a concurrent change won). */
export const stale = (message: string) => new Refusal("stale", message);
export const forbidden = (message: string) => new Refusal("forbidden", message);
/** Understood, but cannot be carried out as things are (a failed connection test, an order that cannot be made). */
export const unprocessable = (message: string, extensions: Record<string, unknown> = {}) => new Refusal("unprocessable", message, [], extensions);

/**
 * Characters no text input takes: control characters (NUL included) and the bidirectional controls that make
 * text read otherwise than it is stored (CVE-2021-42574, "Trojan Source").
 */
// oxlint-disable-next-line no-control-regex -- control characters are what it finds
export const hiddenCharacters = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

/** Rules of input that several use cases state, in one wording. */
export const inputMessages = {
  hiddenCharacters: "must not contain control characters or bidirectional-override characters",
  foreignToken: "is not a continuation token this API gave out",
  nothingToChange: "must change at least one setting",
};

/** zod issues -> field errors: an unknown field by its own name, a rule on the whole input "body". */
export function fieldErrorsFromZod(error: z.ZodError, prefix: string[] = []): FieldError[] {
  return error.issues.flatMap((issue) => {
    const base = [...prefix, ...issue.path.map(String)];
    if (issue.code === "unrecognized_keys") return issue.keys.map((key) => ({ path: [...base, key].join("."), message: "is not a known field" }));
    return [{ path: base.join(".") || "body", message: issue.message }];
  });
}
