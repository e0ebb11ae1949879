import type { CaptureService } from "../../connectors/postgres-source/index.js";
import type { ApplyService } from "../../connectors/postgres-standby/index.js";

/**
 * What the node needs of the service its role runs (the capture on a primary,
 * the applier on a standby): typed answers, never text read back from /status.
 */
export interface RoleService<Status extends object = object> {
  /** Runs until stopped; rejects when the service stops on its own with an error. */
  run(): Promise<void>;
  stop(): Promise<void>;
  /** Its stream flows (the /healthz answer). */
  flowing(): boolean;
  /** The applier's next offset on its topic (everything below it applied); null for a capture. */
  appliedThrough(): bigint | null;
  /** Seconds behind the primary's last commit, for an applier; null when unknown or a capture. */
  lagSeconds(): number | null;
  /** Its client sessions on its own database that a switchover's fence must spare (the capture's catalog session). */
  clientBackendPids(): number[];
  /** The service's own /status document, shown under the node's. */
  status(): Status;
}

export function captureRole(service: CaptureService): RoleService<ReturnType<CaptureService["status"]>> {
  return {
    run: () => service.run(),
    stop: () => service.stop(),
    flowing: () => service.isFlowing(),
    appliedThrough: () => null,
    lagSeconds: () => null,
    clientBackendPids: () => service.clientBackendPids(),
    status: () => service.status(),
  };
}

export function applierRole(service: ApplyService): RoleService<ReturnType<ApplyService["status"]>> {
  return {
    run: () => service.run(),
    stop: () => service.stop(),
    flowing: () => service.isFlowing(),
    appliedThrough: () => BigInt(service.status().nextOffset),
    lagSeconds: () => service.status().timeLagSeconds,
    clientBackendPids: () => [],
    status: () => service.status(),
  };
}
