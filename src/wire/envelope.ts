import { createHash } from "node:crypto";
import type { ByteReader } from "./byte-reader.js";
import type { ByteWriter } from "./byte-writer.js";
import { WireFormatError } from "./wire-format-error.js";

/** The header every message on either topic starts with (docs/wire-format.md, "Message envelope"). */
export interface Envelope {
  /** Identifies the source database; see computeSourceId. */
  sourceId: bigint;
  /** Increases at each promotion of the source. */
  epoch: number;
}

/**
 * The version this code writes. Version 2 added the capture session to data
 * messages and values split across messages; consumers still read version 1.
 */
export const WIRE_FORMAT_VERSION = 2;

/** Versions a consumer here reads. */
export type WireFormatVersion = 1 | 2;

/** The envelope as read, with the format version the rest of the message follows. */
export interface ReadEnvelope extends Envelope {
  version: WireFormatVersion;
}

export const MessageKind = { data: 1, schema: 2 } as const;
export type MessageKind = (typeof MessageKind)[keyof typeof MessageKind];

const MAGIC_0 = 0x44; // "D"
const MAGIC_1 = 0x52; // "R"

/** First 8 bytes (big-endian) of SHA-256 of "<system identifier>/<database name>". */
export function computeSourceId(systemIdentifier: string, databaseName: string): bigint {
  return createHash("sha256")
    .update(`${systemIdentifier}/${databaseName}`, "utf8")
    .digest()
    .readBigUInt64BE(0);
}

export function writeEnvelope(writer: ByteWriter, kind: MessageKind, envelope: Envelope): void {
  writer.u8(MAGIC_0);
  writer.u8(MAGIC_1);
  writer.u8(WIRE_FORMAT_VERSION);
  writer.u8(kind);
  writer.u64(envelope.sourceId);
  writer.uvarint(envelope.epoch);
}

/** Reads the envelope and refuses a message that is not of `expectedKind`. */
export function readEnvelope(reader: ByteReader, expectedKind: MessageKind): ReadEnvelope {
  const magicAt = reader.offset;
  if (reader.remaining < 2) {
    throw new WireFormatError("bad-magic", magicAt, `message of ${reader.remaining} bytes has no "DR" magic`);
  }
  const m0 = reader.u8("magic");
  const m1 = reader.u8("magic");
  if (m0 !== MAGIC_0 || m1 !== MAGIC_1) {
    throw new WireFormatError("bad-magic", magicAt, `magic is 0x${hex2(m0)}${hex2(m1)}, not 0x4452 ("DR")`);
  }
  const versionAt = reader.offset;
  const version = reader.u8("format version");
  if (version !== 1 && version !== 2) {
    throw new WireFormatError(
      "unsupported-version",
      versionAt,
      `wire format version ${version} is not supported (this consumer knows 1 and 2)`,
    );
  }
  const kindAt = reader.offset;
  const kind = reader.u8("message kind");
  if (kind !== MessageKind.data && kind !== MessageKind.schema) {
    throw new WireFormatError("bad-value", kindAt, `message kind ${kind} is not defined`);
  }
  if (kind !== expectedKind) {
    throw new WireFormatError(
      "unexpected-kind",
      kindAt,
      `expected a ${kindName(expectedKind)} message, got a ${kindName(kind)} message`,
    );
  }
  const sourceId = reader.u64("source id");
  const epoch = reader.uvarint("epoch");
  return { sourceId, epoch, version };
}

function kindName(kind: MessageKind): string {
  return kind === MessageKind.data ? "data" : "schema";
}

function hex2(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}
