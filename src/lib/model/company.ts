import { type FieldError, invalid, notFound } from "../errors";

/**
 * The company every route and job names, and the messages every layer shows about it: one definition,
 * so "no connection" reads the same from the setup page, the sync admin, sales orders and statistics.
 */
export const companySlug = /^[a-z0-9][a-z0-9-]{0,62}$/;

export const companyMessages = {
  invalidSlug: "must be a lowercase slug: a-z, 0-9 and -, starting with a letter or digit, at most 63 characters",
  noConnection: (company: string) => `No connection is set up for company "${company}".`,
  staleSetup: "The connection setup was changed since you read it (stale If-Match). Read it again and retry.",
  /** Anything that has to reach Dynamics 365 Sales (sync admin, sales orders, statistics). */
  notEnabled: "The connection is not enabled, so Dynamics 365 Sales cannot be reached. Enable it first.",
};

export function companyProblem(company: string): FieldError | undefined {
  return companySlug.test(company) ? undefined : { path: "company", message: companyMessages.invalidSlug };
}

/** Throws a 400-kind refusal for a company that is not a slug. */
export function requireCompany(company: string): void {
  const problem = companyProblem(company);
  if (problem) throw invalid([problem]);
}

/** The company's stored setup, or a not-found refusal saying no connection is set up. */
export async function requireSetup<T>(setups: { get(company: string): Promise<T | undefined> }, company: string): Promise<T> {
  requireCompany(company);
  const stored = await setups.get(company);
  if (!stored) throw notFound(companyMessages.noConnection(company));
  return stored;
}
