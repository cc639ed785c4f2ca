import { parse, type CsvError } from "csv-parse";
import { badInput } from "../../errors.js";
import { toBuffer, type ByteSource, type ParsedRow } from "./types.js";

export interface CsvOptions {
  delimiter: string;
  /** First record names the columns; otherwise columns are `column1`, `column2`, … */
  header: boolean;
}

type Parsed = { fields: string[]; raw: string } | { error: string; raw: string };

// An unquoted field cannot end in a line break, so trailing ones belong to the record delimiter.
const stripRecordDelimiter = (raw: string) => raw.replace(/[\r\n]+$/, "");

/**
 * RFC 4180 records, streamed. csv-parse runs with `relax_column_count` so a ragged row reaches us
 * and becomes a failure with its field count, and with `skip_records_with_error` so a broken quote
 * fails that row only. Both callbacks fire synchronously inside `write`, in file order, which is
 * why we collect them into one queue instead of reading the stream's output.
 */
export async function* readCsv(input: ByteSource, options: CsvOptions): AsyncGenerator<ParsedRow> {
  const queue: Parsed[] = [];
  const parser = parse({
    bom: true,
    delimiter: options.delimiter,
    relax_column_count: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    raw: true,
    // With `raw: true` csv-parse hands on_record the pair { record, raw }, not the bare fields.
    on_record: (output: unknown) => {
      const { record, raw } = output as { record: string[]; raw: string };
      queue.push({ fields: record, raw: stripRecordDelimiter(raw) });
      return null;
    },
    on_skip: (err: CsvError | undefined, raw: string | undefined) => {
      queue.push({ error: err?.message ?? "unreadable CSV record", raw: stripRecordDelimiter(raw ?? "") });
      return undefined;
    },
  });
  let parserError: unknown;
  parser.on("error", (err) => (parserError = err));
  parser.resume();
  const ended = new Promise<void>((resolve) => parser.once("end", resolve).once("error", () => resolve()));

  let columns: string[] | undefined;
  let rowNumber = 0;
  function* drain(): Generator<ParsedRow> {
    if (parserError) throw badInput(`The CSV file cannot be read: ${String(parserError)}`);
    for (const item of queue.splice(0)) {
      if (columns === undefined && "fields" in item) {
        columns = options.header ? headerNames(item.fields) : item.fields.map((_, i) => `column${i + 1}`);
        if (options.header) continue;
      }
      rowNumber += 1;
      if ("error" in item) {
        yield { rowNumber, ok: false, raw: item.raw, reasons: [item.error] };
      } else if (item.fields.length !== columns!.length) {
        const reason = `expected ${columns!.length} fields, found ${item.fields.length}`;
        yield { rowNumber, ok: false, raw: item.raw, reasons: [reason] };
      } else {
        const record: Record<string, unknown> = {};
        columns!.forEach((name, i) => (record[name] = item.fields[i]));
        yield { rowNumber, ok: true, record, bytes: Buffer.byteLength(item.raw) };
      }
    }
  }

  try {
    for await (const chunk of input) {
      parser.write(toBuffer(chunk));
      yield* drain();
    }
    parser.end();
    await ended;
    yield* drain();
  } finally {
    parser.destroy();
  }
}

function headerNames(fields: string[]): string[] {
  const names = fields.map((name, i) => name.trim() || `column${i + 1}`);
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) throw badInput(`The CSV header names the column "${name}" twice`, { column: name });
    seen.add(name);
  }
  return names;
}
