import type { CaptureSessionId } from "../../src/wire/data-message.js";

/** The capture session test messages are written by, unless a test is about sessions. */
export const TEST_SESSION: CaptureSessionId = { captureId: 0x0123_4567_89ab_cdefn, session: 1 };
