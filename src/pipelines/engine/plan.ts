// A pipeline's steps and its dataset's final check as ClickHouse expressions over the raw text of
// each field, for the engine load (engine-load.ts). The plan does not reproduce the steps: it
// proves, row by row, that a row is one the steps would pass unchanged in meaning and computes the
// values they would leave. That proof is the `clean` expression. A row it cannot prove (an unusual
// number, a date before 1970, a value a step would refuse) is handed to the Node steps
// (steps/compile.ts), which give every reason and every quarantine entry. So the engine never
// rejects anything: the rows it loads are rows the Node path would have loaded with the same
// values, and the others take the Node path.
//
// What cannot be proved this way makes the whole pipeline take the Node path (see `unsupported`):
// expressions (filter, derive), dedupe, patterns and type checks in validate, date layouts,
// decimal commas, non-text defaults, FLOAT64 columns, generated row keys, and casts or checks on
// values already cast.
import type { Column, ColumnType } from "../../catalog/columns.js";
import { ident, join, sql, type Sql } from "../../db/sql.js";
import type { LoadSettings } from "../load-rules.js";
import { StepsSchema, type Step, type StepOf } from "../steps/steps.js";

/** What a field holds while the steps run: its source text, or a value cast to a type. */
type Kind = "TEXT" | ColumnType;

interface Field {
  /** A String expression: the value's text (whatever it holds where the value is null). */
  expr: Sql;
  kind: Kind;
  /**
   * Set where the value may be null (a cast's, from blank text): when it is. Kept beside the
   * text rather than folded into a Nullable expression, which cost every check that reads it.
   */
  blank?: Sql;
  /**
   * Set by a trim step: the proof that trimming leaves the text as it is. No longer needed once
   * the value meets a check that refuses text with spaces at its ends anyway: a cast to, or the
   * final check of, any type but STRING, or an enum of texts with nothing to trim.
   */
  trim?: { check: Sql; needed: boolean };
  /**
   * Set by validate's min and max: each bound's check for any number, and a cheaper one that is
   * exact once the value is proven a whole number in canonical form (null for a fractional bound).
   */
  bounds?: { any: Sql; whole: Sql | null }[];
  /** The value ends in an INT32 or INT64 column, whose final check proves it a whole number. */
  whole?: boolean;
  /**
   * Set by a cast: the proof that the cast reads the text exactly. No longer needed once the
   * value meets a final check that proves at least as much (see `castImplied`).
   */
  cast?: { to: ColumnType; check: Sql; needed: boolean };
}

export interface EnginePlan {
  /** 1 for a row the engine loads, 0 for a row the Node steps must see. Never NULL. */
  clean: Sql;
  /** Each dataset column's value, in the dataset's column order (valid only where `clean`). */
  values: { column: Column; expr: Sql }[];
  /** The row's `_key` text, as canonicalKey makes it (valid only where `clean`). */
  key: Sql;
}

export interface PlanInput {
  steps: unknown;
  columns: readonly Column[];
  keyColumns: readonly string[];
  settings: Pick<LoadSettings, "allowEmptyKeys" | "rowKeyColumn" | "duplicateKeys">;
  /** The source's field names, in file order; field i is staging column `c${i + 1}`. */
  sourceFields: readonly string[];
}

/** Thrown while planning: the pipeline takes the Node path, for this reason. */
class Unsupported extends Error {}

const unsupported = (why: string): never => {
  throw new Unsupported(why);
};

/** The plan, or why this pipeline's rows must all take the Node path. */
export function planEngineLoad(input: PlanInput): EnginePlan | { unsupported: string } {
  try {
    return plan(input);
  } catch (error) {
    if (error instanceof Unsupported) return { unsupported: error.message };
    throw error;
  }
}

/** The name of the staging column holding source field `index` (from 0). */
export const rawColumn = (index: number) => `c${index + 1}`;

// Every character JavaScript's trim() removes is ASCII up to 0x20 or starts with one of these
// bytes; a value that starts or ends with one goes to the Node steps.
const UNICODE_SPACE_LEAD = [0xc2, 0xe1, 0xe2, 0xe3, 0xef];
const DECIMAL_TEXT = "^-?[0-9]+([.][0-9]+)?$";
const DATETIME = "^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}Z?$";
const BOOLEAN_TRUE = ["true", "t", "yes", "y", "1"];
const BOOLEAN_FALSE = ["false", "f", "no", "n", "0"];
/**
 * Dates the engine converts: within what every column holds and what 18.16's Date and DateTime
 * functions read (1970-01-01 itself prints as zeros there). Others go to the Node steps.
 */
const FIRST_DAY = "1970-01-02";
const LAST_DAY = "2105-12-31";
const MAX_COMPARED_DIGITS = 15;

const TRUE = sql`1`;
const yes = (condition: Sql) => sql`ifNull(${condition}, 0)`;
const all = (conditions: readonly Sql[]) =>
  conditions.length ? sql`(${join(conditions.map(yes), " AND ")})` : TRUE;
const isNothing = (f: Field) => (f.blank ? sql`(${f.blank} OR ${f.expr} = '')` : sql`${f.expr} = ''`);
/** The check for a value that is not null (a null one passes). */
const whenPresent = (f: Field, check: Sql) => (f.blank ? sql`if(${f.blank}, 1, ${yes(check)})` : yes(check));
const matches = (expr: Sql, pattern: string) => sql`match(${expr}, ${pattern})`;
const byteAt = (expr: Sql, position: Sql) => sql`reinterpretAsUInt8(substring(${expr}, ${position}, 1))`;

function plan(input: PlanInput): EnginePlan {
  const { settings } = input;
  if (settings.rowKeyColumn !== null) unsupported("the pipeline generates row keys");
  if (settings.duplicateKeys === "QUARANTINE") unsupported("duplicate keys are quarantined");
  const steps = StepsSchema.parse(input.steps);
  const fields = new Map<string, Field>();
  input.sourceFields.forEach((name, i) =>
    fields.set(name, { expr: sql`${ident(rawColumn(i))}`, kind: "TEXT" }),
  );
  const clean: Sql[] = [];
  const deferred: Field[] = [];
  for (const step of steps) applyStep(step, fields, clean, deferred);
  const values = input.columns.map((column) => {
    const field = fields.get(column.name);
    if (!field) return unsupported(`no field is left for the column "${column.name}"`);
    const isKey = input.keyColumns.includes(column.name);
    if (column.type !== "STRING" && field.trim) field.trim.needed = false;
    if (field.cast && castImplied(field.cast.to, column)) field.cast.needed = false;
    if (column.type === "INT32" || column.type === "INT64") field.whole = true;
    const final = finalValue(column, field);
    const nothing = field.blank || column.type !== "STRING" ? nothingFinal(column, field) : null;
    if (nothing && (isKey || !column.nullable)) clean.push(sql`NOT (${nothing})`);
    clean.push(nothing ? sql`if(${nothing}, 1, ${yes(final.valid)})` : final.valid);
    if (isKey && column.type === "STRING" && !settings.allowEmptyKeys) clean.push(sql`${field.expr} != ''`);
    const expr = nothing && column.nullable ? sql`if(${nothing}, NULL, ${final.value})` : final.value;
    return { column, expr, keyText: final.keyText };
  });
  for (const field of new Set(deferred)) {
    if (field.trim?.needed) clean.push(field.trim.check);
    if (field.cast?.needed) clean.push(field.cast.check);
    for (const bound of field.bounds ?? []) clean.push(field.whole && bound.whole ? bound.whole : bound.any);
  }
  const keyTexts = input.keyColumns.map((k) => values.find((v) => v.column.name === k)!.keyText);
  let key: Sql;
  if (keyTexts.length === 1) key = keyTexts[0]!;
  else {
    // JSON.stringify of the texts: the engine writes the texts that need no escaping.
    for (const text of keyTexts) clean.push(sql`NOT match(${text}, ${'["\\\\[:cntrl:]]'})`);
    key = sql`concat('["', ${join(keyTexts, sql`, '","', `)}, '"]')`;
  }
  return { clean: all(clean), values: values.map(({ column, expr }) => ({ column, expr })), key };
}

function applyStep(step: Step, fields: Map<string, Field>, clean: Sql[], deferred: Field[]): void {
  switch (step.op) {
    case "select": {
      const kept = new Map(step.fields.filter((f) => fields.has(f)).map((f) => [f, fields.get(f)!] as const));
      fields.clear();
      for (const [name, field] of kept) fields.set(name, field);
      return;
    }
    case "rename": {
      const pairs: [string, string][] = step.map
        ? Object.entries(step.map)
        : step.from !== undefined && step.to !== undefined
          ? [[step.from, step.to]]
          : [];
      const moved = pairs.map(([from, to]) => [to, fields.get(from)] as const);
      for (const [from] of pairs) fields.delete(from);
      for (const [to, field] of moved) if (field) fields.set(to, field);
      return;
    }
    case "trim": {
      for (const name of step.fields ?? [...fields.keys()]) {
        const field = fields.get(name);
        // Only text is deferred; a cast value's text has no spaces to trim.
        if (!field || field.kind !== "TEXT") continue;
        // Text with nothing to trim at either end stays as it is; any other text goes to the Node
        // steps. Unquoted fields cannot have spaces at their ends here (csv-shape.ts), so this is
        // quoted text, and testing two bytes costs far less than trimming every value.
        const e = field.expr;
        const lead = join(UNICODE_SPACE_LEAD.map((b) => sql`${b}`));
        const first = sql`reinterpretAsUInt8(${e})`; // the first byte, 0 for ''; no copy
        const last = byteAt(e, sql`length(${e})`);
        field.trim ??= {
          check: whenPresent(
            field,
            sql`${e} = '' OR (${first} > 32 AND NOT ${first} IN (${lead}) AND ${last} > 32 AND ${last} < 128)`,
          ),
          needed: true,
        };
        deferred.push(field);
      }
      return;
    }
    case "default": {
      if (typeof step.value !== "string") return unsupported("a default that is not text");
      const field = fields.get(step.field);
      if (field && field.kind !== "TEXT") return unsupported("a default for a cast value");
      const expr = field ? sql`if(${isNothing(field)}, ${step.value}, ${field.expr})` : sql`${step.value}`;
      fields.set(step.field, { expr, kind: "TEXT" });
      return;
    }
    case "cast":
      return castStep(step, fields, deferred);
    case "validate":
      return validateStep(step, fields, clean, deferred);
    default:
      return unsupported(`a ${step.op} step`);
  }
}

function castStep(step: StepOf<"cast">, fields: Map<string, Field>, deferred: Field[]): void {
  if (step.format !== undefined) unsupported("a date layout");
  if (step.decimalSeparator === ",") unsupported("a decimal comma");
  const field = fields.get(step.field);
  if (!field) return; // null stays null
  if (field.kind !== "TEXT") unsupported("a cast of a cast value");
  if (step.to === "STRING") return;
  if (step.to === "FLOAT64") unsupported("FLOAT64 values");
  if (field.trim) field.trim.needed = false; // these casts refuse text with spaces at its ends
  const e = field.expr;
  // Missing values and empty text become null for every type but STRING (text of spaces too,
  // which no pattern below takes: such rows go to the Node steps).
  const blank = isNothing(field);
  const typed = textAs(step.to, e);
  const cast: Field = {
    expr: typed.text,
    kind: step.to,
    blank,
    cast: { to: step.to, check: sql`if(${blank}, 1, ${yes(typed.valid)})`, needed: true },
  };
  fields.set(step.field, cast);
  deferred.push(cast);
}

/**
 * Whether a column's final check proves all that a cast's check does, on the same text: the same
 * whole-number or day check, or a decimal pattern too short to pass a text of more than 37
 * characters (sign, point and digits of a precision up to 35).
 */
function castImplied(to: ColumnType, column: Column): boolean {
  if (to !== column.type) return false;
  if (to === "INT32" || to === "INT64" || to === "DATE") return true;
  return to === "DECIMAL" && (column.precision ?? 18) <= 35;
}

/** A cast of text to `type`: which texts it reads exactly, and the text of the value it makes. */
function textAs(type: ColumnType, e: Sql): { valid: Sql; text: Sql } {
  switch (type) {
    case "INT32":
      return { valid: canonicalInt(e, "Int32"), text: e };
    case "INT64":
      return { valid: canonicalInt(e, "Int64"), text: e };
    case "DECIMAL":
      // Any scale: the final check holds the value to its column. Numbers keep their value.
      return { valid: sql`${matches(e, DECIMAL_TEXT)} AND length(${e}) <= 37`, text: e };
    case "BOOLEAN": {
      const known = join([...BOOLEAN_TRUE, ...BOOLEAN_FALSE].map((t) => sql`${t}`));
      const truthy = join(BOOLEAN_TRUE.map((t) => sql`${t}`));
      return {
        valid: sql`lower(${e}) IN (${known})`,
        text: sql`if(lower(${e}) IN (${truthy}), 'true', 'false')`,
      };
    }
    case "DATE":
      return { valid: dayValid(e), text: e };
    case "DATETIME":
      return { valid: dateTimeValid(e), text: isoText(e) };
    default:
      return unsupported(`a cast to ${type}`);
  }
}

/**
 * Whole numbers written as ClickHouse prints them (no sign on zero, no leading zeros or plus)
 * within the type's range: a text that reads back as itself. Others go to the Node steps.
 */
function canonicalInt(e: Sql, type: "Int32" | "Int64"): Sql {
  return type === "Int32"
    ? sql`toString(toInt32OrZero(${e})) = ${e}`
    : sql`toString(toInt64OrZero(${e})) = ${e}`;
}

function dayValid(e: Sql): Sql {
  // A date that prints as itself is a valid day written as YYYY-MM-DD.
  return sql`${e} BETWEEN ${FIRST_DAY} AND ${LAST_DAY} AND toString(toDateOrZero(${e})) = ${e}`;
}

/** 'YYYY-MM-DD HH:MM:SS' of a text DATETIME matches. */
const spaced = (e: Sql) => sql`concat(substring(${e}, 1, 10), ' ', substring(${e}, 12, 8))`;
const isoText = (e: Sql) => sql`concat(substring(${e}, 1, 10), 'T', substring(${e}, 12, 8), 'Z')`;

function dateTimeValid(e: Sql): Sql {
  const t = spaced(e);
  return sql`${matches(e, DATETIME)} AND ${t} BETWEEN ${`${FIRST_DAY} 00:00:00`} AND ${`${LAST_DAY} 23:59:59`} AND formatDateTime(toDateTimeOrZero(${t}, 'UTC'), '%Y-%m-%d %H:%M:%S', 'UTC') = ${t}`;
}

function validateStep(
  step: StepOf<"validate">,
  fields: Map<string, Field>,
  clean: Sql[],
  deferred: Field[],
): void {
  if (step.type !== undefined) unsupported("a type check in validate");
  if (step.pattern !== undefined) unsupported("a pattern in validate");
  const field = fields.get(step.field);
  const checks: Sql[] = [];
  if (step.enum) {
    if (field && field.kind !== "TEXT") unsupported("an enum check of a cast value");
    const texts = step.enum.filter((v): v is string => typeof v === "string");
    // A value in the enum (or empty) has nothing to trim when no text of the enum has.
    if (field?.trim && texts.every((t) => t.trim() === t)) field.trim.needed = false;
    checks.push(
      texts.length ? sql`${field?.expr ?? sql`''`} IN (${join(texts.map((t) => sql`${t}`))})` : sql`0`,
    );
  }
  const bounds = [
    [">=", step.min],
    ["<=", step.max],
  ] as const;
  for (const [op, limit] of bounds) {
    if (limit === undefined) continue;
    if (typeof limit !== "number" || !comparable(String(limit)))
      unsupported("a bound that is not a short plain number");
    if (field && !["TEXT", "INT32", "INT64", "DECIMAL"].includes(field.kind))
      unsupported(`a bound on a ${field.kind} value`);
    const e = field?.expr ?? sql`''`;
    const compare = op === ">=" ? sql`>=` : sql`<=`;
    // Number(v) against the bound: exact when both have at most 15 digits (no two such decimals
    // round to one double, and rounding keeps order), so compared as decimals here; a value
    // proven a canonical whole number (and a whole bound) compares as an Int64, exactly too.
    const number = sql`CAST(if(${matches(e, DECIMAL_TEXT)} AND length(${e}) <= ${MAX_COMPARED_DIGITS}, ${e}, '0') AS Decimal(38, 15))`;
    const any = sql`${matches(e, DECIMAL_TEXT)} AND length(${e}) <= ${MAX_COMPARED_DIGITS} AND ${number} ${compare} CAST(${String(limit)} AS Decimal(38, 15))`;
    if (!field) checks.push(any);
    else {
      const nothing = isNothing(field);
      const whole = Number.isInteger(limit)
        ? sql`if(${nothing}, 1, toInt64OrZero(${e}) ${compare} ${limit})`
        : null;
      (field.bounds ??= []).push({ any: sql`if(${nothing}, 1, ${all([any])})`, whole });
      deferred.push(field);
    }
  }
  if (step.minLength !== undefined || step.maxLength !== undefined) {
    if (field && field.kind !== "TEXT") unsupported("a length check of a cast value");
    const length = sql`lengthUTF8(${field?.expr ?? sql`''`})`;
    if (step.minLength !== undefined) checks.push(sql`${length} >= ${step.minLength}`);
    if (step.maxLength !== undefined) checks.push(sql`${length} <= ${step.maxLength}`);
  }
  if (!field) {
    // Nothing to check: passes unless required (then every row is refused by the Node steps).
    if (step.required) clean.push(sql`0`);
    return;
  }
  const nothing = isNothing(field);
  if (step.required) clean.push(sql`NOT (${nothing})`);
  if (checks.length) clean.push(sql`if(${nothing}, 1, ${all(checks)})`);
}

/** A plain number of at most 15 digits, as String(limit) writes it. */
function comparable(text: string): boolean {
  return /^-?\d+(\.\d+)?$/.test(text) && text.replace(/[-.]/g, "").length <= MAX_COMPARED_DIGITS;
}

/** A value the final check reads as no value: null, or empty text in a column that is not text. */
function nothingFinal(column: Column, field: Field): Sql {
  if (column.type === "STRING") return field.blank ?? sql`0`;
  return isNothing(field);
}

/**
 * The final check of a present value for its column: which values it takes as they are, the value
 * to store, and its text in the row's key (String() of the JSON representation).
 */
function finalValue(column: Column, field: Field): { valid: Sql; value: Sql; keyText: Sql } {
  const e = field.expr;
  const from = (...kinds: Kind[]) => {
    if (!kinds.includes(field.kind))
      unsupported(`a ${field.kind} value in the ${column.type} column "${column.name}"`);
  };
  switch (column.type) {
    case "STRING":
      from("TEXT");
      return { valid: TRUE, value: e, keyText: e };
    case "INT32":
      from("TEXT", "INT32");
      return { valid: canonicalInt(e, "Int32"), value: sql`toInt32OrZero(${e})`, keyText: e };
    case "INT64":
      from("TEXT", "INT64");
      return { valid: canonicalInt(e, "Int64"), value: sql`toInt64OrZero(${e})`, keyText: e };
    case "DECIMAL":
      from("TEXT", "DECIMAL");
      return decimalValue(column, e);
    case "BOOLEAN":
      from("BOOLEAN");
      return { valid: TRUE, value: sql`if(${e} = 'true', 1, 0)`, keyText: e };
    case "DATE": {
      from("TEXT", "DATE");
      const day = sql`toDateOrZero(${e})`;
      const value =
        column.storage === "wide"
          ? sql`toDate32OrZero(${e})`
          : column.storage === "epoch"
            ? sql`toInt32(${day})`
            : day;
      return { valid: dayValid(e), value, keyText: e };
    }
    case "DATETIME": {
      from("TEXT", "DATETIME");
      const t = spaced(e);
      const seconds = sql`toDateTimeOrZero(${t}, 'UTC')`;
      const value =
        column.storage === "wide"
          ? sql`toDateTime64OrZero(${t}, 3, 'UTC')`
          : column.storage === "epoch"
            ? sql`toInt64(${seconds}) * 1000`
            : seconds;
      return { valid: dateTimeValid(e), value, keyText: isoText(e) };
    }
    case "FLOAT64":
      return unsupported("FLOAT64 columns");
  }
}

/**
 * parseDecimal's canonical text and value. The engine takes decimals without leading zeros whose
 * digits fit the column's precision and scale, checked by one pattern; others go to the Node steps.
 */
function decimalValue(column: Column, e: Sql): { valid: Sql; value: Sql; keyText: Sql } {
  const precision = column.precision ?? 18;
  const scale = column.scale ?? 0;
  const whole = precision - scale;
  const integer = whole === 0 ? "0" : whole === 1 ? "[0-9]" : `(0|[1-9][0-9]{0,${whole - 1}})`;
  const fraction = scale === 0 ? "" : `([.][0-9]{1,${scale}})?`;
  const valid = matches(e, `^-?${integer}${fraction}$`);
  const value = sql`CAST(if(${valid}, ${e}, '0') AS Decimal(${precision}, ${scale}))`;
  // The key's text: the value with exactly `scale` digits after the point and no sign on zero.
  const point = sql`position(${e}, '.')`;
  const digits = sql`if(${point} = 0, ${e}, substring(${e}, 1, ${point} - 1))`;
  const after = sql`if(${point} = 0, '', substring(${e}, ${point} + 1))`;
  const padded = sql`substring(concat(${after}, ${"0".repeat(scale)}), 1, ${scale})`;
  const text = scale > 0 ? sql`concat(${digits}, '.', ${padded})` : digits;
  const zero = sql`match(${e}, '^-?0([.]0*)?$')`;
  const keyText = sql`if(${zero}, ${scale > 0 ? `0.${"0".repeat(scale)}` : "0"}, ${text})`;
  return { valid, value, keyText };
}
