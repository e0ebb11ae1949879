import { describeCaptureId } from "../../src/wire/capture-id.js";
import type { CaptureSessionId } from "../../src/wire/data-message.js";

/**
 * Tells a stale capture session's late messages from the current one's.
 * A capture id grows with every capture start (src/wire/capture-id.ts: the
 * epoch and the source's start counter, whatever the capture host's clock
 * says; ids of older captures, a start time, are smaller than all of those),
 * and a capture numbers its sessions from 1, so (capture id, session) grows
 * with every new session. A produce request still in flight when its
 * session ended can land after the next session's first messages; everything
 * it carried was unacknowledged, so the newer session sends it again and the
 * late copy can be skipped whole.
 */
export class SessionOrder {
  private newest: CaptureSessionId | null = null;

  /** Whether a message of `session` is stale; otherwise it becomes the newest seen if it is newer. */
  isStale(session: CaptureSessionId): boolean {
    const newest = this.newest;
    if (newest !== null && compare(session, newest) < 0) return true;
    this.newest = session;
    return false;
  }
}

function compare(a: CaptureSessionId, b: CaptureSessionId): number {
  if (a.captureId !== b.captureId) return a.captureId < b.captureId ? -1 : 1;
  return a.session - b.session;
}

export function describeSession(session: CaptureSessionId): string {
  return `capture ${session.captureId.toString(16).padStart(16, "0")} session ${session.session} (${describeCaptureId(session.captureId)})`;
}
