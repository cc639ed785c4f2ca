// Turning source values into a column type's JSON representation (catalog/columns.ts): the
// `cast` step's lenient reading of text (thousands separators, date layouts) in front of the
// strict parsers of records/values.ts, which also check the final row.
import type { ColumnType } from "../../catalog/columns.js";
import {
  ANY_STORAGE,
  ValueError,
  parseBoolean,
  parseDecimal,
  parseString,
  toRepresentation,
} from "../../records/values.js";

export { toRepresentation };

const TOKEN = /YYYY|MM|M|DD|D|HH|H|mm|ss/g;
const TOKEN_PATTERN: Record<string, string> = {
  YYYY: "(\\d{4})",
  MM: "(\\d{2})",
  DD: "(\\d{2})",
  HH: "(\\d{2})",
  mm: "(\\d{2})",
  ss: "(\\d{2})",
  M: "(\\d{1,2})",
  D: "(\\d{1,2})",
  H: "(\\d{1,2})",
};

export interface DateLayout {
  regex: RegExp;
  /** The token each capture group holds, normalised to YYYY MM DD HH mm ss. */
  groups: string[];
}

/** Compiles a layout such as "DD/MM/YYYY HH:mm"; a string describes what is wrong. */
export function compileDateLayout(format: string): DateLayout | string {
  const groups: string[] = [];
  let pattern = "";
  let last = 0;
  for (const match of format.matchAll(TOKEN)) {
    pattern += escapeRegex(format.slice(last, match.index)) + TOKEN_PATTERN[match[0]];
    groups.push(match[0].length === 1 ? match[0].repeat(2) : match[0]);
    last = match.index + match[0].length;
  }
  pattern += escapeRegex(format.slice(last));
  if (new Set(groups).size !== groups.length) return `format "${format}" repeats a token`;
  if (!["YYYY", "MM", "DD"].every((t) => groups.includes(t)))
    return `format "${format}" needs a year (YYYY), month (MM or M) and day (DD or D)`;
  return { regex: new RegExp(`^${pattern}$`), groups };
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function readLayout(text: string, layout: DateLayout, time: boolean): string {
  const m = layout.regex.exec(text);
  if (!m) throw new ValueError("does not match the date format");
  const part = (token: string, width: number) => {
    const i = layout.groups.indexOf(token);
    return (i === -1 ? "0" : m[i + 1]!).padStart(width, "0");
  };
  const day = `${part("YYYY", 4)}-${part("MM", 2)}-${part("DD", 2)}`;
  return time ? `${day}T${part("HH", 2)}:${part("mm", 2)}:${part("ss", 2)}Z` : day;
}

const SPACES = /[\s\u00a0\u202f']/g;
const PLAIN_NUMBER = /^-?\d+(?:\.\d+)?$/;

/** "1 234,56" with separator "," → "1234.56"; numbers pass through. */
export function normaliseNumber(value: unknown, separator: "." | ","): unknown {
  if (typeof value !== "string") return value;
  if (separator === "." && PLAIN_NUMBER.test(value)) return value; // most values: nothing to do
  const text = value.replace(SPACES, "");
  return separator === "," ? text.replace(/\./g, "").replace(",", ".") : text.replace(/,/g, "");
}

export interface CastOptions {
  to: ColumnType;
  layout?: DateLayout;
  decimalSeparator?: "." | ",";
}

/**
 * The `cast` step. Missing values and empty text become null for every type but STRING; the
 * result is the type's JSON representation. Throws {@link ValueError}.
 */
export function castValue(value: unknown, options: CastOptions): unknown {
  const { to } = options;
  if (value === undefined || value === null) return null;
  if (to !== "STRING" && typeof value === "string" && value.trim() === "") return null;
  switch (to) {
    case "STRING":
      if (typeof value === "number" || typeof value === "boolean") return String(value);
      return parseString(value);
    case "INT32":
    case "INT64":
    case "FLOAT64":
      return toRepresentation({ type: to }, normaliseNumber(value, options.decimalSeparator ?? "."));
    case "DECIMAL": {
      const text = normaliseNumber(value, options.decimalSeparator ?? ".");
      // Any scale: the final check rounds nothing and holds the value to its column's shape.
      const point = typeof text === "string" ? text.indexOf(".") : -1;
      const fraction = typeof text !== "string" ? 18 : point === -1 ? 0 : text.length - point - 1;
      return parseDecimal(text, { type: "DECIMAL", precision: 38, scale: Math.min(fraction, 38) });
    }
    case "BOOLEAN":
      return parseBoolean(typeof value === "string" ? booleanText(value) : value);
    case "DATE":
    case "DATETIME": {
      const text = typeof value === "string" ? value.trim() : value;
      const iso =
        options.layout && typeof text === "string"
          ? readLayout(text, options.layout, to === "DATETIME")
          : text;
      try {
        // The column's own range is checked when the row is made to fit the dataset.
        return toRepresentation({ type: to, ...ANY_STORAGE }, iso);
      } catch (error) {
        // The parsers describe ISO text; with a layout, the reader's text is what was wrong.
        if (options.layout && error instanceof ValueError) throw new ValueError("is not a valid date");
        throw error;
      }
    }
  }
}

const TRUE = new Set(["true", "t", "yes", "y", "1"]);
const FALSE = new Set(["false", "f", "no", "n", "0"]);

function booleanText(text: string): unknown {
  const t = text.trim().toLowerCase();
  return TRUE.has(t) ? true : FALSE.has(t) ? false : text;
}

export function describe(error: unknown): string {
  if (error instanceof ValueError) return error.message;
  throw error;
}
