// The CSV fast path against csv-parse itself: random texts built from the characters that matter
// (delimiters, quotes, every line ending, multi-byte text), cut into random chunks, must give the
// same records, raw texts and failure reasons as csv-parse reading the whole file.
import { parse, type CsvError } from "csv-parse";
import { describe, expect, it } from "vitest";
import { CsvScanner, skipReason } from "../../src/sources/formats/csv-scanner.js";
import { decodeText } from "../../src/sources/formats/text.js";

type Event = { fields: string[]; raw: string } | { reason: string; raw: string };

// csv-parse's raw text of a record after an empty CRLF line starts with that line's \r; the
// scanner's does not. Only the record's own text is compared.
const strip = (raw: string) => raw.replace(/^[\r\n]+|[\r\n]+$/g, "");

function reference(bytes: Buffer, delimiter: string): Event[] {
  const events: Event[] = [];
  const parser = parse({
    bom: true,
    delimiter,
    relax_column_count: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    relax_quotes: true,
    raw: true,
    on_record: (output: unknown) => {
      const { record, raw } = output as { record: string[]; raw: string };
      events.push({ fields: record, raw: strip(raw) });
      return null;
    },
    on_skip: (err: CsvError | undefined, raw: string | undefined) => {
      events.push({ reason: skipReason(err, 0), raw: strip(raw ?? "") });
      return undefined;
    },
  });
  parser.write(bytes);
  parser.end();
  return events;
}

async function scanned(bytes: Buffer, delimiter: string, cuts: number[]): Promise<Event[]> {
  const events: Event[] = [];
  const scanner = new CsvScanner(delimiter, {
    record: (fields, raw) => events.push({ fields, raw: strip(raw) }),
    skip: (reason, raw) => events.push({ reason, raw: strip(raw) }),
    fail: (error) => {
      throw error;
    },
  });
  // Cut as bytes, so multi-byte characters are split across writes as a file's chunks split them.
  const chunks: Buffer[] = [];
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    chunks.push(bytes.subarray(at, cut));
    at = cut;
  }
  for await (const text of decodeText(
    (async function* () {
      yield* chunks;
    })(),
  ))
    scanner.write(text);
  await scanner.end();
  return events;
}

function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("CsvScanner", () => {
  it("reads well-formed files without csv-parse, exactly as csv-parse does", async () => {
    const text = '\uFEFFid,text\r\n1,"a, ""b""\r\nc"\r\n\r\n2,東京\r\n3,\r\n';
    const bytes = Buffer.from(text);
    expect(await scanned(bytes, ",", [1, 5, 17, 18])).toEqual(reference(bytes, ","));
  });

  it("reads a quote inside an unquoted field as text, without handing over", async () => {
    const bytes = Buffer.from('id,h,q\n1,5\'10",say "hi" there\n2,x,y\n');
    const events = await scanned(bytes, ",", []);
    expect(events).toEqual([
      { fields: ["id", "h", "q"], raw: "id,h,q" },
      { fields: ["1", "5'10\"", 'say "hi" there'], raw: '1,5\'10",say "hi" there' },
      { fields: ["2", "x", "y"], raw: "2,x,y" },
    ]);
    expect(events).toEqual(reference(bytes, ","));
  });

  it("agrees with csv-parse on random texts cut into random chunks", async () => {
    const random = prng(7);
    const pieces = ["a", "bc", ",", ";", '"', '""', "\n", "\r\n", "\r", " ", "é", "😀", "\t"];
    const common = [
      ["a", ",", "\n"],
      ["a", ",", "\r\n"],
      ["a", ",", '"', "\n"],
    ];
    for (let round = 0; round < 3000; round++) {
      // Mostly plain, well-formed-ish pieces, so the fast path runs before it meets trouble.
      const base = common[round % common.length]!;
      let text = round % 5 === 0 ? "\uFEFF" : "";
      const length = 1 + Math.floor(random() * 40);
      for (let i = 0; i < length; i++) {
        const from = random() < 0.8 ? base : pieces;
        text += from[Math.floor(random() * from.length)];
      }
      const delimiter = round % 7 === 0 ? ";" : ",";
      const bytes = Buffer.from(text);
      const cuts = [...new Set(Array.from({ length: 3 }, () => Math.floor(random() * bytes.length)))].sort(
        (a, b) => a - b,
      );
      expect(await scanned(bytes, delimiter, cuts), JSON.stringify({ text, cuts })).toEqual(
        reference(bytes, delimiter),
      );
    }
  });
});
