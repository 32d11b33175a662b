// A job entry as the admin changes and sees it: the settings a PATCH may change, and the displayed state.
import { inputMessages } from "../errors";
import * as z from "zod";
import type { JobEntry } from "../model/job-entry";
import { timerNameOf } from "./default-mappings";

/** What PATCH .../sync/jobs/{job} may change (BC's job queue entry fields). */
export const jobPatch = z
  .strictObject({
    minutesBetweenRuns: z.number().int("must be a whole number").min(1, "must be at least 1").max(1440, "must be at most 1440 (a day)").optional(),
    maxAttempts: z.number().int("must be a whole number").min(1, "must be at least 1").max(100, "must be at most 100").optional(),
    earliestStartAt: z.iso
      .datetime({ offset: true, error: "must be an ISO 8601 time, e.g. 2026-11-26T06:00:00Z" })
      // A start years away would leave the entry Ready but never due: within a year is what a schedule means.
      .refine((time) => Math.abs(Date.parse(time) - Date.now()) <= 366 * 24 * 3600_000, "must be within a year from now")
      .optional(),
    inactivityTimeoutMinutes: z
      .number()
      .int("must be a whole number")
      .min(0, "must be 0 (never sleeps) or more")
      .max(10080, "must be at most 10080 (a week)")
      .optional(),
  })
  .refine((patch) => Object.keys(patch).length > 0, { message: inputMessages.nothingToChange });

/** Held by a full synchronization that has not ended nor expired. */
export function isHeld(job: JobEntry, now: Date): boolean {
  return job.heldByFullSync !== undefined && job.heldUntil !== undefined && Date.parse(job.heldUntil) > now.getTime();
}

export interface JobView extends Omit<JobEntry, "company" | "leaseOwner" | "progressJson"> {
  timer: string;
  /** Set while the entry runs: the phase and the records done so far. */
  progress?: { runId: string; phase: string; recordsDone: number; recordsTotal?: number; updatedAt: string };
}

/** A job entry as the API shows it: no lease owner, its displayed status, and the progress of a running one. */
export function jobView(job: JobEntry, now: Date): JobView {
  const { company: _company, leaseOwner: _owner, progressJson, ...rest } = job;
  const progress = job.status === "In Process" && progressJson ? (JSON.parse(progressJson) as JobView["progress"]) : undefined;
  return { ...rest, status: displayedStatus(job, now), timer: timerNameOf(job.id), ...(progress && { progress }) };
}

/** The status users see: a held entry shows On Hold, whatever it will return to. */
export function displayedStatus(job: JobEntry, now: Date): JobEntry["status"] {
  return isHeld(job, now) && job.status !== "In Process" ? "On Hold" : job.status;
}

/** After a successful run: still idle since when, and asleep once idle for the inactivity timeout. */
export function idleState(job: JobEntry, active: boolean, started: Date, finished: Date): { idleSince?: string; sleeping?: boolean } {
  if (active) return {};
  const idleSince = job.idleSince ?? started.toISOString();
  const timeout = job.inactivityTimeoutMinutes ?? 0;
  const sleeping = timeout > 0 && finished.getTime() - Date.parse(idleSince) >= timeout * 60_000;
  return sleeping ? { idleSince, sleeping } : { idleSince };
}
