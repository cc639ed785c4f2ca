// The engine load's CSV check (src/pipelines/engine/csv-shape.ts) against our own CSV reader:
// whatever the check passes, the reader reads as the same number of well-formed records with the
// same bytes; and well-formed files pass, whatever chunks they arrive in.
import { describe, expect, it } from "vitest";
import { CsvShapeCheck, joinShapes } from "../../src/pipelines/engine/csv-shape.js";
import { recordFields } from "../../src/pipelines/engine/engine-load.js";
import { readCsv } from "../../src/sources/formats/csv.js";
import type { ParsedRow } from "../../src/sources/formats/types.js";

function shapeOf(text: string, cuts: number[]) {
  const bytes = Buffer.from(text, "utf8");
  const check = new CsvShapeCheck(",".charCodeAt(0));
  let at = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b), bytes.length]) {
    check.push(bytes.subarray(at, cut));
    at = cut;
  }
  return check.end();
}

async function readAll(text: string): Promise<ParsedRow[]> {
  const rows: ParsedRow[] = [];
  const input = (async function* () {
    yield Buffer.from(text, "utf8");
  })();
  for await (const row of readCsv(input, { delimiter: ",", header: true })) rows.push(row);
  return rows;
}

/** A small random generator, seeded, so a failure can be replayed. */
function random(seed: number) {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

const PIECES = ["a", "b", "7", ",", '"', '""', "\n", "\r\n", "\r", " ", "\t", "\\", "é", "東", ""];

describe("csv shape check", () => {
  it("passes only texts our reader reads as well-formed records of one width, with the same bytes", async () => {
    const next = random(20261205);
    let passed = 0;
    const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
    for (let n = 0; n < 3000; n++) {
      // Mostly well-formed records of two fields, then now and then one random piece anywhere.
      const field = () =>
        next() < 0.5
          ? pick(["a", "7", "é", "東京", "", "x y"])
          : `"${Array.from({ length: Math.floor(next() * 4) }, () => pick(["a", ",", '""', "\n", " ", "é"])).join("")}"`;
      const records = Array.from({ length: 1 + Math.floor(next() * 5) }, () => `${field()},${field()}`);
      let text = `h1,h2\n${records.join("\n")}${next() < 0.5 ? "\n" : ""}`;
      if (next() < 0.4) {
        const at = 6 + Math.floor(next() * (text.length - 6));
        text = text.slice(0, at) + pick(PIECES) + text.slice(at);
      }
      const cuts = Array.from({ length: 3 }, () => Math.floor(next() * Buffer.byteLength(text)));
      const shape = shapeOf(text, cuts);
      if ("problem" in shape) continue;
      passed++;
      const rows = await readAll(text);
      expect(
        rows.every((r) => r.ok),
        text,
      ).toBe(true);
      expect(rows.length, text).toBe(shape.records - 1);
      expect(shape.fields, text).toBe(2);
      const bytes = rows.reduce((sum, r) => sum + (r.ok ? r.bytes : 0), 0);
      expect(bytes, text).toBe(shape.recordBytes - shape.first!.length);
    }
    expect(passed).toBeGreaterThan(1500);
  });

  it("passes well-formed files in any chunks, and reads the header's fields", async () => {
    const text = 'id,"na,me","q ""x"""\n1,"multi\nline",東京\r\n'.replace("\r\n", "\n") + '2,,""\n3,"a",b';
    for (let cut = 1; cut < Buffer.byteLength(text); cut += 3) {
      const shape = shapeOf(text, [cut]);
      expect("problem" in shape ? shape.problem : null).toBeNull();
      if ("problem" in shape) continue;
      expect(shape.records).toBe(4);
      expect(shape.terminated).toBe(false);
      expect(await recordFields(shape.first!, ",")).toEqual(["id", "na,me", 'q "x"']);
    }
  });

  it("names what ClickHouse might read differently", () => {
    const cases: [string, RegExp][] = [
      ["a,b\n1, x\n", /starting with a space/],
      ["a,b\n1,x \n", /ending with a space/],
      ['a,b\n1,x"y\n', /quote inside an unquoted field/],
      ['a,b\n1,"x"y\n', /text after a closing quote/],
      ["a,b\n1,x\n\n2,y\n", /blank line/],
      ["a,b\n1,x\r2,y\n", /carriage return/],
      ["a,b\n1,x,z\n", /3 fields where the first has 2/],
      ["a,b\n1,x\\y\n", /backslash/],
      ["\ufeffa,b\n1,x\n", /byte-order mark/],
      ['a,b\n1,"x\n', /never closed/],
      ["a,b\r\n1,x\n", /line ends that change/],
    ];
    for (const [text, problem] of cases) {
      const shape = shapeOf(text, []);
      expect("problem" in shape ? shape.problem : "", text).toMatch(problem);
    }
    const invalid = Buffer.concat([Buffer.from("a,b\n1,"), Buffer.from([0xff, 0xfe]), Buffer.from("\n")]);
    const check = new CsvShapeCheck(44);
    check.push(invalid);
    expect(check.end()).toMatchObject({ problem: expect.stringMatching(/not UTF-8/) });
  });

  it("reads a file split at any line end as two parts as it reads it whole, or says the split cut a record", () => {
    const texts = [
      'id,"na,me"\n1,"multi\nline"\n2,x\n3,"a ""q"""\n4,\n',
      "id,name\r\n1,a\r\n2,b\r\n3,c",
      'id,name\n1,"x\n\ny"\n2,"\n"\n',
    ];
    let splits = 0;
    let cuts = 0;
    for (const text of texts) {
      const bytes = Buffer.from(text, "utf8");
      const whole = shapeOf(text, []);
      expect("problem" in whole ? whole.problem : null).toBeNull();
      for (let at = bytes.indexOf(10) + 1; at > 0 && at < bytes.length; at = bytes.indexOf(10, at) + 1) {
        const head = new CsvShapeCheck(44);
        head.push(bytes.subarray(0, at));
        if (!head.atRecordStart) {
          cuts++; // the line end is inside a quoted field
          continue;
        }
        const tail = new CsvShapeCheck(44, at);
        tail.push(bytes.subarray(at));
        const [h, t] = [head.end(), tail.end()];
        if ("problem" in h || "problem" in t) throw new Error(`${text} at ${at}`);
        expect(joinShapes(h, t), `${JSON.stringify(text)} at ${at}`).toEqual(whole);
        splits++;
      }
    }
    expect(splits).toBeGreaterThan(8);
    expect(cuts).toBeGreaterThan(3);
  });

  it("names a later part's problems at their place in the file, and line ends or widths that differ between parts", () => {
    const tailOf = (head: string, tail: string) => {
      const check = new CsvShapeCheck(44, Buffer.byteLength(head));
      check.push(Buffer.from(tail));
      return check.end();
    };
    const head = "a,b\n1,x\n";
    expect(tailOf(head, '2,y\n3,x"y\n')).toEqual(shapeOf(head + '2,y\n3,x"y\n', []));
    expect(tailOf(head, "2, y\n")).toEqual({
      problem: "the file has an unquoted field starting with a space or tab (byte 10)",
    });
    // The bytes of a byte-order mark are text past the file's start (the load never splits before them).
    expect(tailOf(head, "\ufeff2,y\n")).toMatchObject({ records: 1 });
    const first = shapeOf(head, []);
    if ("problem" in first) throw new Error(first.problem);
    const joined = (tail: string) => {
      const shape = tailOf(head, tail);
      if ("problem" in shape) throw new Error(shape.problem);
      return joinShapes(first, shape);
    };
    expect(joined("2,y,z\n")).toEqual({ problem: "the file has a record of 3 fields where the first has 2" });
    expect(joined("2,y\r\n")).toEqual({
      problem: "the file has line ends that change between \\n and \\r\\n",
    });
    expect(joined("2,y")).toMatchObject({ records: 3, terminated: false, lineEnd: "\n" });
  });
});
