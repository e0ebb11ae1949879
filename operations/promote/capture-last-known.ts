import type { ZeroLossGuarantee } from "../../connectors/postgres-source/index.js";

/** What the old primary's capture last said about itself, from its /status. */
export interface CaptureLastKnown {
  /** WAL between the server's last reported end and the slot's confirmed position: what Kafka may lack. */
  slotLagBytes: number | null;
  /** Whether every commit waited for the capture (zero-loss mode); "unknown" when the capture did not say. */
  zeroLoss: ZeroLossGuarantee | "unknown";
  /** Its walsender's sync_state (`sync`: the synchronous standby commits wait for); null when unknown or not connected. */
  syncState: string | null;
  confirmedLsn: string | null;
}

const UNKNOWN: CaptureLastKnown = {
  slotLagBytes: null,
  zeroLoss: "unknown",
  syncState: null,
  confirmedLsn: null,
};

/**
 * The capture's /status as last served (a capture's, or a primary node's,
 * which holds it under `service`); every field unknown when it does not answer within 2 s.
 */
export async function captureLastKnown(statusUrl: string | undefined): Promise<CaptureLastKnown> {
  if (!statusUrl) return UNKNOWN;
  try {
    const response = await fetch(statusUrl, { signal: AbortSignal.timeout(2000) });
    type Served = { slotLagBytes?: unknown; zeroLoss?: unknown; syncState?: unknown; confirmedLsn?: unknown };
    const body = (await response.json()) as Served & { role?: unknown; service?: Served | null };
    const status: Served = body.role === "node" ? (body.service ?? {}) : body;
    return {
      slotLagBytes: typeof status.slotLagBytes === "number" ? status.slotLagBytes : null,
      zeroLoss:
        status.zeroLoss === "required" || status.zeroLoss === "optional" || status.zeroLoss === "off"
          ? status.zeroLoss
          : "unknown",
      syncState: typeof status.syncState === "string" ? status.syncState : null,
      confirmedLsn: typeof status.confirmedLsn === "string" ? status.confirmedLsn : null,
    };
  } catch {
    return UNKNOWN;
  }
}
