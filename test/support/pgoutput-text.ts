import type {
  PgoutputMessage,
  TupleValue,
} from "../../connectors/postgres-source/pgoutput/pgoutput-decoder.js";
import { TextBytes } from "../../src/change/text-bytes.js";

/**
 * A message from the slot reader with its values decoded to strings: a test
 * that keeps messages past onMessage needs its own copy, since their byte
 * ranges are of the socket's receive buffer, which pg reuses.
 */
export function asText(message: PgoutputMessage<TextBytes>): PgoutputMessage {
  const text = (tuple: TupleValue<TextBytes>[]): TupleValue[] =>
    tuple.map((v) => (v instanceof TextBytes ? v.toString() : v));
  switch (message.tag) {
    case "insert":
      return { ...message, newTuple: text(message.newTuple) };
    case "update": {
      const { oldTuple, newTuple, ...rest } = message;
      return oldTuple === undefined
        ? { ...rest, newTuple: text(newTuple) }
        : { ...rest, oldTuple: text(oldTuple), newTuple: text(newTuple) };
    }
    case "delete":
      return { ...message, oldTuple: text(message.oldTuple) };
    default:
      return message;
  }
}
