import { badInput } from "../../errors.js";
import { decodeText, type TextEncoding } from "./text.js";
import { isPlainObject, jsonKind, MAX_RECORD_BYTES, type ByteSource, type ParsedRow } from "./types.js";

function toRow(rowNumber: number, text: string): ParsedRow {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { rowNumber, ok: false, raw: text, reasons: [`invalid JSON: ${(err as Error).message}`] };
  }
  if (!isPlainObject(value)) {
    return { rowNumber, ok: false, raw: text, reasons: [`expected a JSON object, found ${jsonKind(value)}`] };
  }
  return { rowNumber, ok: true, record: value, bytes: Buffer.byteLength(text) };
}

const tooLong = () =>
  badInput(`A JSON record is longer than ${MAX_RECORD_BYTES / 1024 / 1024} MiB`, { limit: MAX_RECORD_BYTES });

/** One JSON object per line; blank lines are skipped, a bad line is a failure row. */
export async function* readNdjson(input: ByteSource, encoding?: TextEncoding): AsyncGenerator<ParsedRow> {
  let pending = "";
  let rowNumber = 0;
  function* lines(text: string, final: boolean): Generator<ParsedRow> {
    let start = 0;
    for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", start)) {
      const line = text.slice(start, nl).trim();
      start = nl + 1;
      if (line) yield toRow(++rowNumber, line);
    }
    pending = text.slice(start);
    if (pending.length > MAX_RECORD_BYTES) throw tooLong();
    if (final && pending.trim()) yield toRow(++rowNumber, pending.trim());
  }
  for await (const text of decodeText(input, encoding)) yield* lines(pending + text, false);
  yield* lines(pending, true);
}

/**
 * A top-level array, streamed element by element: a small scanner finds where each element ends
 * (tracking strings and nesting) and JSON.parse reads that element alone, so memory holds one
 * element at a time whatever the file's size.
 */
export async function* readJsonArray(input: ByteSource, encoding?: TextEncoding): AsyncGenerator<ParsedRow> {
  let state: "before" | "element" | "done" = "before";
  let depth = 0;
  let inString = false;
  let escaped = false;
  let element = "";
  let rowNumber = 0;

  const notArray = () => badInput("The JSON file must hold a top-level array of objects");

  for await (const text of decodeText(input, encoding)) {
    let start = state === "element" ? 0 : -1;
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (state === "element") {
        if (inString) {
          if (escaped) escaped = false;
          else if (c === "\\") escaped = true;
          else if (c === '"') inString = false;
          continue;
        }
        if (c === '"') inString = true;
        else if (c === "{" || c === "[") depth++;
        else if ((c === "}" || c === "]") && depth > 0) depth--;
        else if (depth === 0 && (c === "," || c === "]")) {
          element += text.slice(start, i);
          start = -1;
          const trimmed = element.trim();
          element = "";
          if (trimmed) yield toRow(++rowNumber, trimmed);
          else if (c === ",") throw badInput("The JSON array has an empty element", { after: rowNumber });
          state = c === "]" ? "done" : "element";
          if (state === "element") start = i + 1;
        }
        continue;
      }
      if (c === " " || c === "\n" || c === "\r" || c === "\t") continue;
      if (state === "before" && c === "[") {
        state = "element";
        start = i + 1;
      } else {
        throw state === "done" ? badInput("The JSON file has content after its top-level array") : notArray();
      }
    }
    if (start !== -1) element += text.slice(start);
    if (element.length > MAX_RECORD_BYTES) throw tooLong();
  }
  if (state === "before") return; // an empty file holds no rows
  if (state !== "done") throw badInput("The JSON array is not closed: the file is truncated or malformed");
}
