/**
 * Lets Kafka fetch the next batch while the standby applies this one.
 *
 * kafkajs fetches again only once eachBatch has returned (its fetcher awaits its worker queue), so an
 * eachBatch that applied its batch before returning left the broker idle for the whole apply and the
 * standby idle for the whole fetch: every transaction that arrived during an apply waited for it, then
 * for a fetch round trip. Here eachBatch queues its batch behind the one being applied and returns as
 * soon as that one is done: one batch applies, the next waits, a third is being fetched. Batches apply
 * one at a time, in the order kafkajs handed them over.
 */
export class BatchPipeline<B> {
  private tail: Promise<void> = Promise.resolve();
  private waiting = 0;

  /**
   * `apply` gets each batch and `moreBehind()`, true while a later batch waits (the group may then stay
   * open across the batch's end). A rejection goes to `onError`; the batches behind are still handed to
   * `apply`, which must see that its session has failed and halt.
   */
  constructor(
    private readonly apply: (batch: B, moreBehind: () => boolean) => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** kafkajs's eachBatch: resolves once every batch pushed before this one is applied, halted or failed. */
  push(batch: B): Promise<void> {
    const before = this.tail;
    this.waiting += 1;
    this.tail = before
      .then(() => {
        this.waiting -= 1;
        return this.apply(batch, () => this.waiting > 0);
      })
      .catch((err: unknown) => this.onError(err));
    return before;
  }

  /** Resolves once every batch pushed so far (and any pushed meanwhile) is applied, halted or failed. */
  async settled(): Promise<void> {
    for (;;) {
      const tail = this.tail;
      await tail;
      if (tail === this.tail) return;
    }
  }
}
