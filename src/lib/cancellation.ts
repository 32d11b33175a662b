/**
 * What a cancelled operation fails with: the canceller's reason (the host shutting down, a test's crash), never a
 * transport failure, so nothing retries it. Used from the HTTPS transport up to the sync run's waves.
 */
export function stoppedBy(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error("The operation was stopped.");
}
