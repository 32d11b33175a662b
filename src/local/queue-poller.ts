import { readFileSync } from "node:fs";
import { join } from "node:path";
import { QueueClient } from "@azure/storage-queue";
import type { QueueFunctionDefinition } from "../lib/http/function-definition";
import { invocationContext } from "./invocation-context";

/** Queue retry settings of host.json (extensions.queues), which the Functions host applies in Azure too. */
const queueSettings = (() => {
  const settings =
    (
      JSON.parse(readFileSync(join(process.cwd(), "host.json"), "utf8")) as {
        extensions?: { queues?: { maxDequeueCount?: number; visibilityTimeout?: string } };
      }
    ).extensions?.queues ?? {};
  const [hours = 0, minutes = 0, seconds = 0] = (settings.visibilityTimeout ?? "00:00:00").split(":").map(Number);
  return { maxDequeueCount: settings.maxDequeueCount ?? 5, visibilityTimeoutSeconds: hours * 3600 + minutes * 60 + seconds };
})();
const maxDequeueCount = queueSettings.maxDequeueCount;

/** Polls one Storage queue like the Functions host: base64 JSON messages, retry, poison queue after 5 tries. */
export class QueuePoller {
  private readonly queue: QueueClient;
  private readonly poison: QueueClient;
  private busy: Promise<number> | undefined;

  constructor(
    private readonly definition: QueueFunctionDefinition,
    connectionString: string,
    private readonly log: (line: string) => void,
  ) {
    this.queue = new QueueClient(connectionString, definition.queueName);
    this.poison = new QueueClient(connectionString, `${definition.queueName}-poison`);
  }

  async start(): Promise<void> {
    await this.queue.createIfNotExists();
  }

  /** One receive: runs the messages in parallel; a poll already running is joined, not doubled. */
  poll(): Promise<number> {
    this.busy ??= this.receive().finally(() => (this.busy = undefined));
    return this.busy;
  }

  private async receive(): Promise<number> {
    await this.start();
    const { receivedMessageItems } = await this.queue.receiveMessages({ numberOfMessages: 16, visibilityTimeout: 600 });
    await Promise.all(
      receivedMessageItems.map(async (message) => {
        const text = Buffer.from(message.messageText, "base64").toString("utf8");
        let payload: unknown = text;
        try {
          payload = JSON.parse(text);
        } catch {
          // a plain string message
        }
        try {
          await this.definition.handler(payload, invocationContext(this.definition.name, this.log));
          await this.queue.deleteMessage(message.messageId, message.popReceipt);
        } catch (error) {
          this.log(`[${this.definition.name}] failed (try ${message.dequeueCount}): ${error instanceof Error ? error.message : String(error)}`);
          if (message.dequeueCount >= maxDequeueCount) {
            await this.poison.createIfNotExists();
            await this.poison.sendMessage(message.messageText);
            await this.queue.deleteMessage(message.messageId, message.popReceipt);
          } else {
            await this.queue.updateMessage(message.messageId, message.popReceipt, undefined, queueSettings.visibilityTimeoutSeconds);
          }
        }
      }),
    );
    return receivedMessageItems.length;
  }
}
