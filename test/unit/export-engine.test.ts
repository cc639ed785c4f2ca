import { describe, expect, it } from "vitest";
import type { Column } from "../../src/catalog/columns.js";
import { sql } from "../../src/db/sql.js";
import { capRows, engineAbilities, engineExport, RowCounter } from "../../src/records/export.engine.js";
import { withoutTrailingError } from "../../src/records/records.reader.js";

const rows = sql`SELECT 1`;
const v18 = engineAbilities("18.16.1");
const v26 = engineAbilities("26.7.2.1");
const col = (name: string, type: Column["type"], extra: Partial<Column> = {}): Column => ({
  name,
  type,
  nullable: true,
  ...extra,
});

describe("engineExport", () => {
  it("lets the engine write what it can write the Datahus way, per server", () => {
    const plain = [col("name", "STRING"), col("n", "INT64"), col("at", "DATETIME")];
    for (const format of ["ndjson", "csv", "tsv"] as const) {
      expect(engineExport(format, plain, [rows], null, v18)?.text).toContain("FORMAT");
    }
    expect(engineExport("parquet", plain, [rows], null, v18)).toBeNull();
    expect(engineExport("parquet", plain, [rows], null, v26)?.text).toMatch(/FORMAT Parquet$/);
  });

  it("keeps booleans in NDJSON and wide decimals on 18.16 on the Node path", () => {
    expect(engineExport("ndjson", [col("ok", "BOOLEAN")], [rows], null, v18)).toBeNull();
    expect(engineExport("csv", [col("ok", "BOOLEAN")], [rows], null, v18)?.text).toContain("'false'");
    const wide = [col("d", "DECIMAL", { precision: 30, scale: 4 })];
    expect(engineExport("csv", wide, [rows], null, v18)).toBeNull();
    expect(engineExport("csv", wide, [rows], null, v26)?.text).toContain("toDecimalString(`_c0`, 4)");
    const narrow = [col("d", "DECIMAL", { precision: 12, scale: 2 })];
    expect(engineExport("ndjson", narrow, [rows], null, v18)?.text).toContain("toString(`_c0`)");
  });
});

describe("RowCounter", () => {
  const count = (format: "csv" | "ndjson" | "tsv" | "parquet", chunks: string[]) => {
    const counter = new RowCounter(format);
    for (const chunk of chunks) counter.add(Buffer.from(chunk));
    return counter.rows;
  };

  it("counts complete lines, across chunk boundaries", () => {
    expect(count("ndjson", ['{"a":1}\n{"a"', ":2}\n{"])).toBe(2);
    // The engine writes rows only; the API writes the header (tsvHeader) apart.
    expect(count("tsv", ["0\tw\n1\tx\n", "2\ty\n3"])).toBe(3);
  });

  it("does not count line ends inside quoted CSV fields, even split between chunks", () => {
    expect(count("csv", ['1,"a\r\nb"\r\n2,"', 'x""\n', 'y"\r\n3,z'])).toBe(2);
    // A chunk without a quote inside a quoted field, and one outside.
    expect(count("csv", ['1,"a', "\nb\n", 'c"\n2\n', "3\n4\n"])).toBe(4);
  });

  it("counts CSV lines as a byte-by-byte reading would, whatever the text and its chunks", () => {
    let state = 7;
    const next = () => (state = (state * 48271) % 2147483647) / 2147483647;
    const reference = (text: string) => {
      let quoted = false;
      let lines = 0;
      for (const ch of text) {
        if (ch === '"') quoted = !quoted;
        else if (ch === "\n" && !quoted) lines++;
      }
      return lines;
    };
    for (let n = 0; n < 500; n++) {
      const text = Array.from(
        { length: Math.floor(next() * 60) },
        () => ['"', "\n", "\r\n", "a", ",", '""'][Math.floor(next() * 6)],
      ).join("");
      const cuts = [
        0,
        ...Array.from({ length: 3 }, () => Math.floor(next() * text.length)),
        text.length,
      ].sort((a, b) => a - b);
      const chunks = cuts.slice(1).map((end, i) => text.slice(cuts[i], end));
      expect(count("csv", chunks), JSON.stringify(chunks)).toBe(reference(text));
    }
  });

  it("counts nothing of a Parquet file before its end", () => {
    expect(count("parquet", ["PAR1\n\n\n"])).toBe(0);
  });
});

describe("capRows", () => {
  /** An output of these chunks that records how often it is given back. */
  const output = (chunks: string[]) => {
    const calls = { read: 0, returned: 0 };
    const source: AsyncIterable<Buffer> = {
      [Symbol.asyncIterator]: () => ({
        next: async () =>
          calls.read < chunks.length
            ? { done: false, value: Buffer.from(chunks[calls.read++]!) }
            : { done: true, value: undefined },
        return: async () => {
          calls.returned++;
          return { done: true, value: undefined };
        },
      }),
    };
    return { source, calls };
  };
  const read = async (bytes: AsyncIterable<Buffer>) => {
    const parts: Buffer[] = [];
    for await (const part of bytes) parts.push(part);
    return Buffer.concat(parts).toString();
  };

  it("sends the rows held for and no more, cut at a row's end, and stops the output", async () => {
    const { source, calls } = output(['{"a":1}\n{"a":2}\n{"a"', ':3}\n{"a":4}\n', '{"a":5}\n']);
    const capped = capRows(source, "ndjson", 3);
    expect(await read(capped)).toBe('{"a":1}\n{"a":2}\n{"a":3}\n');
    expect(capped.rows).toBe(3);
    expect(calls).toEqual({ read: 2, returned: 1 });
  });

  it("stops the output once the last row held for ends a chunk, without reading on", async () => {
    const { source, calls } = output(["0\tw\n1\tx\n", "2\ty\n"]);
    const capped = capRows(source, "tsv", 2);
    expect(await read(capped)).toBe("0\tw\n1\tx\n");
    expect(calls).toEqual({ read: 1, returned: 1 });
  });

  it("cuts CSV after a row end outside quotes only, whatever the chunks", async () => {
    const rows = ['1,"a\r\nb"\r\n', '2,"x""\ny"\r\n', "3,z\r\n", '4,"\n"\r\n'];
    const text = rows.join("");
    for (let cut = 1; cut < text.length; cut++) {
      for (let most = 1; most <= rows.length; most++) {
        const capped = capRows(output([text.slice(0, cut), text.slice(cut)]).source, "csv", most);
        expect(await read(capped), `cut ${cut}, ${most} rows`).toBe(rows.slice(0, most).join(""));
        expect(capped.rows).toBe(most);
      }
    }
  });

  it("passes every byte of an output with fewer rows, and of a Parquet file", async () => {
    const short = output(["1\n2\n"]);
    const capped = capRows(short.source, "tsv", 5);
    expect(await read(capped)).toBe("1\n2\n");
    expect(capped.rows).toBe(2);
    expect(short.calls.returned).toBe(0); // ended by the output itself
    const parquet = capRows(output(["PAR1\n\n\n", "PAR1"]).source, "parquet", 1);
    expect(await read(parquet)).toBe("PAR1\n\n\nPAR1");
    expect(parquet.rows).toBe(0);
  });

  it("gives the output back when given back before its first read", async () => {
    const { source, calls } = output(["1\n"]);
    await capRows(source, "ndjson", 1)[Symbol.asyncIterator]().return?.();
    expect(calls).toEqual({ read: 0, returned: 1 });
  });
});

describe("withoutTrailingError", () => {
  const read = async (chunks: string[]) => {
    const out: Buffer[] = [];
    let most = 0;
    for await (const part of withoutTrailingError(
      (async function* () {
        for (const chunk of chunks) yield Buffer.from(chunk);
      })(),
    )) {
      out.push(part);
      most = Math.max(most, part.length);
    }
    return { text: Buffer.concat(out).toString(), most };
  };

  it("passes every byte on, in order, holding little whatever the chunks' sizes", async () => {
    const big = "x".repeat(70_000);
    const small = Array.from({ length: 5_000 }, (_, i) => `${i}\n`);
    const chunks = [big, ...small, big, "a", "b", big.slice(0, 5_000), "end\n"];
    const { text, most } = await read(chunks);
    expect(text).toBe(chunks.join(""));
    // Short chunks do not pile up: nothing longer than a big chunk or twice the held tail.
    expect(most).toBeLessThanOrEqual(70_000);
  });

  /** An output that counts how often it is given back. */
  const counted = (chunks: string[]) => {
    const calls = { returned: 0 };
    const output: AsyncIterable<Buffer> = {
      [Symbol.asyncIterator]() {
        let i = 0;
        return {
          next: async () =>
            i < chunks.length
              ? { done: false, value: Buffer.from(chunks[i++]!) }
              : { done: true, value: undefined },
          return: async () => {
            calls.returned++;
            return { done: true, value: undefined };
          },
        };
      },
    };
    return { output, calls };
  };

  it("gives the output back when it is given back before its first read, or mid-way", async () => {
    // A client gone before the first byte: the statement behind the output must stop.
    const unread = counted(["a".repeat(5_000)]);
    await withoutTrailingError(unread.output).return?.();
    expect(unread.calls.returned).toBe(1);
    const partly = counted(["a".repeat(5_000), "b".repeat(5_000), "c".repeat(5_000)]);
    for await (const _ of withoutTrailingError(partly.output)) break;
    expect(partly.calls.returned).toBe(1);
  });

  it("fails on an error the server appended, even split over short chunks, and sends none of it", async () => {
    const error = "Code: 241, e.displayText() = DB::Exception: Memory limit exceeded\n";
    const rows = "r".repeat(10_000) + "\n";
    const sent: string[] = [];
    const chunks = [rows, ...error.match(/.{1,7}/gs)!];
    await expect(
      (async () => {
        for await (const part of withoutTrailingError(
          (async function* () {
            for (const chunk of chunks) yield Buffer.from(chunk);
          })(),
        ))
          sent.push(part.toString());
      })(),
    ).rejects.toThrow(/Memory limit exceeded/);
    expect(sent.join("")).not.toContain("Code: 241");
    expect(rows.startsWith(sent.join(""))).toBe(true);
  });
});
