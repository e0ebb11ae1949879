import { describe, expect, it } from "vitest";
import { SessionOrder } from "../../../connectors/postgres-standby/session-order.js";
import { countedCaptureId, describeCaptureId } from "../../../src/wire/capture-id.js";

/** A capture id as captures wrote it before counted ids: start time in ms, 16 random bits. */
const clockId = (ms: number, random = 0xffff) => (BigInt(ms) << 16n) | BigInt(random);

describe("capture id", () => {
  it("grows with the start number and the epoch, whatever the clock", () => {
    expect(countedCaptureId(0, 2n)).toBeGreaterThan(countedCaptureId(0, 1n));
    expect(countedCaptureId(1, 1n)).toBeGreaterThan(countedCaptureId(0, 4_294_967_295n));
    expect(countedCaptureId(0, 1n)).toBe(0x8000_0000_0000_0001n);
    expect(countedCaptureId(3, 7n)).toBe(0x8000_0003_0000_0007n);
  });

  it("is greater than every clock-based id of an older capture, up to the year 6429", () => {
    const year6400 = Date.UTC(6400, 0, 1);
    expect(countedCaptureId(0, 1n)).toBeGreaterThan(clockId(year6400));
    expect(countedCaptureId(0, 1n)).toBeGreaterThan(clockId(Date.now()));
  });

  it("refuses an epoch or start number that does not fit", () => {
    expect(() => countedCaptureId(2 ** 31, 1n)).toThrow(/epoch 2147483648 does not fit/);
    expect(() => countedCaptureId(-1, 1n)).toThrow(/epoch -1/);
    expect(() => countedCaptureId(0, 0n)).toThrow(/start number 0/);
    expect(() => countedCaptureId(0, 2n ** 32n)).toThrow(/capture_start sequence/);
  });

  it("says what it is", () => {
    expect(describeCaptureId(countedCaptureId(5, 12n))).toBe("epoch 5, start 12");
    expect(describeCaptureId(clockId(Date.UTC(2026, 0, 2, 3, 4, 5)))).toBe(
      "started at 2026-01-02T03:04:05.000Z by its clock",
    );
  });

  it("orders sessions so that a later start on a clock that stepped back is current and the earlier start stale", () => {
    const order = new SessionOrder();
    const earlier = { captureId: countedCaptureId(0, 1n), session: 3 };
    const later = { captureId: countedCaptureId(0, 2n), session: 1 };
    expect(order.isStale({ captureId: clockId(Date.now()), session: 9 })).toBe(false);
    expect(order.isStale(earlier)).toBe(false);
    expect(order.isStale(later)).toBe(false);
    expect(order.isStale(earlier)).toBe(true);
    expect(order.isStale({ captureId: clockId(Date.now()), session: 9 })).toBe(true);
    expect(order.isStale({ ...later, session: 2 })).toBe(false);
  });
});
