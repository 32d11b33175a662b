import type { TokenCredential } from "@azure/identity";
import type { QueueClient } from "@azure/storage-queue";
import * as z from "zod";

export const syncQueueName = "sync-runs";

/** What the timers and the API hand to the queue worker. */
/**
 * A queued run: one company's job entry (`now`: a user's "Run now", which runs whatever the entry's status
 * and leaves the status as it was), or one company's full synchronization. Checked when received: a message
 * that is not one of these is refused (and ends in the poison queue), never run half-understood.
 */
export const syncMessage = z.discriminatedUnion("kind", [
  z.strictObject({
    kind: z.literal("job"),
    company: z.string().min(1).max(63),
    job: z.string().min(1).max(60),
    runId: z.string().min(1).max(80),
    now: z.boolean().optional(),
  }),
  z.strictObject({ kind: z.literal("full"), company: z.string().min(1).max(63), runId: z.string().min(1).max(80) }),
]);
export type SyncMessage = z.infer<typeof syncMessage>;

export type QueueAccess = { connectionString: string } | { queueServiceUri: string; credential: TokenCredential };

/**
 * The fan-out queue: one message per company and job, so that several instances share the work. Messages
 * are base64-encoded JSON, the Functions host's default queue message encoding.
 */
export class WorkQueue {
  private clientInstance?: QueueClient;
  private created?: Promise<unknown>;

  constructor(
    private readonly access: QueueAccess,
    private readonly queueName = syncQueueName,
  ) {}

  /** The queue SDK loads on the first message, not at cold start. */
  private get client(): QueueClient {
    const { QueueClient: Client } = require("@azure/storage-queue") as typeof import("@azure/storage-queue");
    const { access, queueName } = this;
    return (this.clientInstance ??=
      "connectionString" in access
        ? new Client(access.connectionString, queueName)
        : new Client(`${access.queueServiceUri.replace(/\/$/, "")}/${queueName}`, access.credential));
  }

  async send(message: SyncMessage): Promise<void> {
    this.created ??= this.client.createIfNotExists().catch((error: unknown) => {
      this.created = undefined;
      throw error;
    });
    await this.created;
    await this.client.sendMessage(Buffer.from(JSON.stringify(message)).toString("base64"));
  }
}
