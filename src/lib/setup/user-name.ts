import * as z from "zod";
import { type AuthenticationType, usesDomainUserName, usesEmailUserName } from "../model/authentication-type";
import { setupMessages } from "./messages";

const email = z.email();
const domainUser = /^[^\\/\s]+\\[^\\\s]+$/;

/** The rule the user name breaks for this authentication type, or undefined when it is fine. */
export function userNameProblem(type: AuthenticationType, userName: string): string | undefined {
  if (usesDomainUserName(type) && !domainUser.test(userName)) return setupMessages.userNameNeedsDomain;
  if (usesEmailUserName(type) && !email.safeParse(userName).success) return setupMessages.userNameMustBeEmail;
  return undefined;
}

/** DOMAIN\user -> DOMAIN; read-only in the ERP, derived here. */
export function domainOf(userName: string | undefined): string | undefined {
  if (!userName) return undefined;
  const slash = userName.indexOf("\\");
  return slash > 0 ? userName.slice(0, slash) : undefined;
}
