import { describe, expect, it } from "vitest";
import { AppError } from "../../src/errors.js";
import { decodeGlobalId, encodeGlobalId } from "../../src/graphql/relay.js";
import { decodeCursor, encodeCursor, pageRequest } from "../../src/pagination.js";

const limits = { maxLimit: 1000 };
const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return e instanceof AppError ? e.code : "other";
  }
  return "none";
};

describe("pageRequest", () => {
  it("requires first or last", () => {
    expect(code(() => pageRequest({}, limits))).toBe("BAD_USER_INPUT");
    expect(code(() => pageRequest({ after: "c" }, limits))).toBe("BAD_USER_INPUT");
    expect(pageRequest({ first: 10 }, limits)).toEqual({
      direction: "forward",
      size: 10,
      after: null,
      before: null,
    });
  });

  it("reads backward with last/before", () => {
    expect(pageRequest({ last: 5, before: "c" }, limits)).toEqual({
      direction: "backward",
      size: 5,
      after: null,
      before: "c",
    });
  });

  it("refuses mixed directions and sizes out of range", () => {
    expect(code(() => pageRequest({ first: 1, last: 1 }, limits))).toBe("BAD_USER_INPUT");
    expect(code(() => pageRequest({ first: 1, before: "c" }, limits))).toBe("BAD_USER_INPUT");
    expect(code(() => pageRequest({ last: 1, after: "c" }, limits))).toBe("BAD_USER_INPUT");
    expect(code(() => pageRequest({ first: -1 }, limits))).toBe("BAD_USER_INPUT");
    expect(code(() => pageRequest({ first: 1001 }, limits))).toBe("BAD_USER_INPUT");
    expect(code(() => pageRequest({ first: 1000 }, limits))).toBe("none");
  });
});

describe("cursors", () => {
  it("round-trip their sort key", () => {
    const key = ["2024-01-01", 42, null, "0190a000-0000-7000-8000-000000000000"];
    expect(decodeCursor(encodeCursor(key), 4, "after")).toEqual(key);
  });

  it("reject anything else as BAD_USER_INPUT", () => {
    const cases = [
      "",
      "not base64!",
      Buffer.from("{}").toString("base64url"),
      Buffer.from("[1]").toString("base64url"),
      Buffer.from('[2,"x"]').toString("base64url"),
      Buffer.from('[1,{"a":1}]').toString("base64url"),
      encodeCursor(["a", "b"]),
      "A".repeat(5000),
    ];
    for (const cursor of cases) expect(code(() => decodeCursor(cursor, 1, "after"))).toBe("BAD_USER_INPUT");
  });
});

describe("global ids", () => {
  const uuid = "0190a000-0000-7000-8000-000000000000";

  it("round-trip type and id", () => {
    expect(decodeGlobalId(encodeGlobalId("Dataset", uuid))).toEqual({ type: "Dataset", id: uuid });
  });

  it("reject malformed ids and ids of another type", () => {
    expect(code(() => decodeGlobalId("garbage"))).toBe("BAD_USER_INPUT");
    expect(code(() => decodeGlobalId(encodeGlobalId("Dataset", "1; DROP")))).toBe("BAD_USER_INPUT");
    expect(code(() => decodeGlobalId(encodeGlobalId("Dataset", uuid), ["Pipeline"]))).toBe("BAD_USER_INPUT");
  });
});
