// A MessageSink that records each produce request and lets the test decide when (and whether) Kafka answers.
import type { MessageSink } from "../../../src/kafka/ordered-publisher.js";

export interface FakeRequest {
  values: Buffer[];
  settled: boolean;
  /** Kafka took the request; endOffset as Kafka would report it (null: not reported). */
  ack(endOffset?: bigint | null): void;
  fail(error: Error): void;
}

export class FakeMessageSink implements MessageSink {
  readonly name = 'topic "fake.data"';
  readonly requests: FakeRequest[] = [];
  /** Answer every request at once instead of waiting for ack()/fail(). */
  autoAck = false;

  send(values: Buffer[]): Promise<bigint | null> {
    return new Promise<bigint | null>((resolve, reject) => {
      const request: FakeRequest = {
        values,
        settled: false,
        ack: (endOffset = null) => {
          request.settled = true;
          resolve(endOffset);
        },
        fail: (error) => {
          request.settled = true;
          reject(error);
        },
      };
      this.requests.push(request);
      if (this.autoAck) request.ack();
    });
  }

  /** Requests Kafka has not answered yet. */
  get inFlight(): FakeRequest[] {
    return this.requests.filter((r) => !r.settled);
  }

  /** The one unanswered request; a test that sees two has found a reordering bug. */
  outstanding(): FakeRequest {
    const open = this.inFlight;
    if (open.length !== 1) throw new Error(`expected one request in flight, found ${open.length}`);
    return open[0] as FakeRequest;
  }
}

/** Lets promise callbacks and the publisher's follow-up sends run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
