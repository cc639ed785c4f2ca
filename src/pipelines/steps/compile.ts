// Compiles a pipeline's steps against its dataset once, then runs records through them. Pure: the
// caller reads the source and writes the rows. A row that fails is returned with every reason
// found, and the run goes on.
import { badInput } from "../../errors.js";
import { canonicalKey, type Column } from "../../catalog/columns.js";
import { ANY_STORAGE, ValueError } from "../../records/values.js";
import { castValue, compileDateLayout, describe, toRepresentation, type CastOptions } from "./cast.js";
import { compileExpression, expressionError, plainResult, type Expression } from "./expression.js";
import { StepsSchema, type Step, type StepOf } from "./steps.js";

export interface SourceRecord {
  rowNumber: number;
  record: Record<string, unknown>;
}

export type StepResult =
  | { ok: true; rowNumber: number; row: Record<string, unknown> }
  | { ok: false; rowNumber: number; raw: Record<string, unknown>; reasons: string[] };

export interface PipelineTarget {
  columns: Column[];
  keyColumns: string[];
  /** A column the runner fills in every record (a generated row key): no step can drop it. */
  generatedKey?: string | null;
}

export interface CompiledPipeline {
  process(records: AsyncIterable<SourceRecord> | Iterable<SourceRecord>): AsyncIterable<StepResult>;
  /**
   * One record through the steps: its result, or undefined when a filter dropped it. A promise
   * only when an expression step (filter, derive) runs, so callers can stay synchronous per row.
   */
  processRecord(rowNumber: number, record: unknown): StepResult | undefined | Promise<StepResult | undefined>;
  /** Source fields seen so far that neither the steps nor the dataset's columns use. */
  newFields(): string[];
  /** Whether the steps or the dataset's columns (as they are now) use a source field. */
  uses(field: string): boolean;
  /** Rows read, passed, rejected, and skipped by a filter. */
  stats(): { read: number; ok: number; rejected: number; filtered: number };
}

type Row = Record<string, unknown>;

interface RowState {
  row: Row;
  reasons: string[];
  /** Fields whose cast failed: the final check does not report them twice. Made on first use. */
  failed: Set<string> | null;
  /** Keys this row claims if it passes. */
  keys: string[];
}

type Op = (state: RowState, seen: Set<string>) => Promise<boolean> | boolean;

/**
 * A row's fields while the steps run. Its prototype has no prototype, so a field named __proto__
 * or toString is just a field (as with Object.create(null)), yet instances stay in V8's fast
 * mode: Object.create(null) objects are hash tables, several times slower for every step.
 */
const FieldRow = function FieldRow() {} as unknown as new () => Row;
FieldRow.prototype = Object.create(null) as object;

const NOTHING = (v: unknown) => v === undefined || v === null || v === "";

export function compilePipeline(steps: unknown, target: PipelineTarget): CompiledPipeline {
  const parsed = StepsSchema.safeParse(steps);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (i) => `steps${i.path.map((p) => `[${JSON.stringify(p)}]`).join("")}: ${i.message}`,
    );
    throw badInput(`Invalid pipeline: ${problems.join("; ")}`, { problems });
  }
  const problems: string[] = [];
  const used = new Set<string>(target.columns.map((c) => c.name));
  // The fields a row can have at each point; null while every source field may still be there.
  let known: Set<string> | null = null;
  const need = (at: string, name: string) => {
    used.add(name);
    if (known && !known.has(name))
      problems.push(`${at}: field "${name}" is not there (dropped by a select or renamed)`);
  };
  const ops: Op[] = [];
  parsed.data.forEach((step, i) => {
    const at = `steps[${i}] (${step.op})`;
    const op = compileStep(step, at, problems, need, used);
    if (op) ops.push(op);
    known = fieldsAfter(step, known);
  });
  const finalFields = known as Set<string> | null;
  if (finalFields) {
    for (const c of target.columns) {
      if (c.name === target.generatedKey) continue;
      if (!finalFields.has(c.name) && (!c.nullable || target.keyColumns.includes(c.name)))
        problems.push(`column "${c.name}" is required but no field of that name is left after the steps`);
    }
  }
  if (problems.length) throw badInput(`Invalid pipeline: ${problems.join("; ")}`, { problems });
  return new Pipeline(ops, target, used);
}

function fieldsAfter(step: Step, known: Set<string> | null): Set<string> | null {
  switch (step.op) {
    case "select":
      return new Set(known ? step.fields.filter((f) => known.has(f)) : step.fields);
    case "rename": {
      if (!known) return null;
      const next = new Set(known);
      for (const [from, to] of renames(step)) if (next.delete(from)) next.add(to);
      return next;
    }
    case "default":
    case "derive":
      return known ? new Set(known).add(step.field) : null;
    default:
      return known;
  }
}

function renames(step: StepOf<"rename">): [string, string][] {
  if (step.map) return Object.entries(step.map);
  return step.from !== undefined && step.to !== undefined ? [[step.from, step.to]] : [];
}

function compileStep(
  step: Step,
  at: string,
  problems: string[],
  need: (at: string, name: string) => void,
  used: Set<string>,
): Op | undefined {
  switch (step.op) {
    case "select": {
      step.fields.forEach((f) => need(at, f));
      const fields = step.fields;
      return (s) => {
        const next = new FieldRow();
        for (const f of fields) if (f in s.row) next[f] = s.row[f];
        s.row = next;
        return true;
      };
    }
    case "rename": {
      const pairs = renames(step);
      if (
        (step.map === undefined) === (step.from === undefined || step.to === undefined) ||
        (step.map && (step.from ?? step.to))
      )
        problems.push(`${at}: give either "from" and "to", or "map"`);
      pairs.forEach(([from]) => need(at, from));
      return (s) => {
        const values = pairs.map(([from]) => s.row[from]);
        const present = pairs.map(([from]) => from in s.row);
        for (const [from] of pairs) delete s.row[from];
        pairs.forEach(([, to], j) => {
          if (present[j]) s.row[to] = values[j];
        });
        return true;
      };
    }
    case "cast": {
      need(at, step.field);
      const options: CastOptions = { to: step.to, decimalSeparator: step.decimalSeparator };
      if (step.format !== undefined) {
        if (step.to !== "DATE" && step.to !== "DATETIME")
          problems.push(`${at}: "format" applies to DATE and DATETIME only`);
        const layout = compileDateLayout(step.format);
        if (typeof layout === "string") problems.push(`${at}: ${layout}`);
        else options.layout = layout;
      }
      if (step.decimalSeparator && !["INT32", "INT64", "FLOAT64", "DECIMAL"].includes(step.to))
        problems.push(`${at}: "decimalSeparator" applies to numeric types only`);
      const f = step.field;
      return (s) => {
        try {
          s.row[f] = castValue(s.row[f], options);
        } catch (error) {
          (s.failed ??= new Set()).add(f);
          s.reasons.push(
            `field "${f}": cannot cast ${JSON.stringify(s.row[f])} to ${step.to}: ${describe(error)}`,
          );
        }
        return true;
      };
    }
    case "trim": {
      step.fields?.forEach((f) => need(at, f));
      const fields = step.fields;
      return (s) => {
        const row = s.row;
        if (fields) {
          for (const f of fields) if (typeof row[f] === "string") row[f] = (row[f] as string).trim();
        } else {
          // A FieldRow's prototype has no enumerable members: for…in visits its own fields only.
          for (const f in row) if (typeof row[f] === "string") row[f] = (row[f] as string).trim();
        }
        return true;
      };
    }
    case "default": {
      used.add(step.field);
      const { field: f, value } = step;
      return (s) => {
        if (NOTHING(s.row[f])) s.row[f] = value;
        return true;
      };
    }
    case "filter":
    case "derive": {
      const expr = compileExpression(step.expression);
      if (typeof expr === "string") {
        problems.push(`${at}: expression ${JSON.stringify(step.expression)}: ${expr}`);
        return undefined;
      }
      expr.names.forEach((n) => used.add(n));
      return step.op === "filter" ? filterOp(expr) : deriveOp(expr, step.field, used);
    }
    case "dedupe": {
      step.keys.forEach((k) => need(at, k));
      const keys = step.keys;
      return (s, seen) => {
        const key = `${s.keys.length}:${canonicalKey(keys, s.row)}`;
        if (seen.has(key)) s.reasons.push(`duplicate key ${canonicalKey(keys, s.row)}`);
        s.keys.push(key);
        return true;
      };
    }
    case "validate":
      need(at, step.field);
      return validateOp(step, at, problems);
  }
}

function filterOp(expr: Expression): Op {
  return async (s) => {
    try {
      const result = plainResult(await expr.evaluate({ ...s.row }));
      return Array.isArray(result) ? result.length > 0 : Boolean(result);
    } catch (error) {
      s.reasons.push(`filter: ${expressionError(error)}`);
      return true;
    }
  };
}

function deriveOp(expr: Expression, field: string, used: Set<string>): Op {
  used.add(field);
  return async (s) => {
    try {
      s.row[field] = plainResult(await expr.evaluate({ ...s.row }));
    } catch (error) {
      (s.failed ??= new Set()).add(field);
      s.reasons.push(`field "${field}": the expression failed: ${expressionError(error)}`);
    }
    return true;
  };
}

function validateOp(step: StepOf<"validate">, at: string, problems: string[]): Op {
  let pattern: RegExp | undefined;
  if (step.pattern !== undefined) {
    try {
      pattern = new RegExp(step.pattern, "u");
    } catch (error) {
      problems.push(`${at}: invalid pattern: ${(error as Error).message}`);
    }
  }
  if (typeof step.min === "number" && typeof step.max === "number" && step.min > step.max)
    problems.push(`${at}: min is greater than max`);
  if (step.minLength !== undefined && step.maxLength !== undefined && step.minLength > step.maxLength)
    problems.push(`${at}: minLength is greater than maxLength`);
  const f = step.field;
  const bounds = (
    [
      ["min", step.min],
      ["max", step.max],
    ] as const
  ).filter((b): b is readonly ["min" | "max", string | number] => b[1] !== undefined);
  return (s) => {
    const v = s.row[f];
    const fail = (why: string) => s.reasons.push(`field "${f}" ${why}`);
    if (NOTHING(v)) {
      if (step.required) fail("is required");
      return true;
    }
    if (step.type) {
      try {
        toRepresentation({ type: step.type, ...ANY_STORAGE }, v);
      } catch (error) {
        fail(`is not a ${step.type}: ${describe(error)}`);
      }
    }
    if (step.enum && !step.enum.includes(v as string))
      fail(`must be one of ${step.enum.map((e) => JSON.stringify(e)).join(", ")}`);
    if (pattern && !(typeof v === "string" && pattern.test(v)))
      fail(`does not match the pattern ${step.pattern}`);
    for (const [bound, limit] of bounds) {
      const below = typeof limit === "number" ? Number(v) < limit : String(v) < limit;
      const above = typeof limit === "number" ? Number(v) > limit : String(v) > limit;
      if (typeof limit === "number" && Number.isNaN(Number(v))) fail("is not a number");
      else if (bound === "min" && below) fail(`is below the minimum ${limit}`);
      else if (bound === "max" && above) fail(`is above the maximum ${limit}`);
    }
    if (step.minLength === undefined && step.maxLength === undefined) return true;
    // Characters, not UTF-16 units: counting them copies the string, so only when asked.
    const length = typeof v === "string" ? [...v].length : Array.isArray(v) ? v.length : undefined;
    if (length === undefined) fail("has no length");
    else {
      if (step.minLength !== undefined && length < step.minLength) fail(`is shorter than ${step.minLength}`);
      if (step.maxLength !== undefined && length > step.maxLength) fail(`is longer than ${step.maxLength}`);
    }
    return true;
  };
}

class Pipeline implements CompiledPipeline {
  private readonly seenKeys = new Set<string>();
  private readonly sourceFields = new Set<string>();
  private readonly counts = { read: 0, ok: 0, rejected: 0, filtered: 0 };

  constructor(
    private readonly ops: Op[],
    private readonly target: PipelineTarget,
    private readonly used: Set<string>,
  ) {}

  async *process(records: AsyncIterable<SourceRecord> | Iterable<SourceRecord>): AsyncIterable<StepResult> {
    for await (const { rowNumber, record } of records) {
      const pending = this.processRecord(rowNumber, record);
      const result = pending instanceof Promise ? await pending : pending;
      if (result) yield result;
    }
  }

  processRecord(
    rowNumber: number,
    record: unknown,
  ): StepResult | undefined | Promise<StepResult | undefined> {
    this.counts.read++;
    const pending = this.processOne(rowNumber, record);
    return pending instanceof Promise ? pending.then((r) => this.count(r)) : this.count(pending);
  }

  private count(result: StepResult | undefined): StepResult | undefined {
    if (!result) this.counts.filtered++;
    else this.counts[result.ok ? "ok" : "rejected"]++;
    return result;
  }

  /** Synchronous unless an expression step runs: a promise per row would cost a tick each. */
  private processOne(
    rowNumber: number,
    record: unknown,
  ): StepResult | undefined | Promise<StepResult | undefined> {
    if (record === null || typeof record !== "object" || Array.isArray(record))
      return { ok: false, rowNumber, raw: { value: record }, reasons: ["the record is not an object"] };
    const raw = record as Row;
    for (const name in raw) this.sourceFields.add(name);
    const state: RowState = {
      row: Object.assign(new FieldRow(), raw),
      reasons: [],
      failed: null,
      keys: [],
    };
    for (let i = 0; i < this.ops.length; i++) {
      const passed = this.ops[i]!(state, this.seenKeys);
      if (typeof passed !== "boolean") return this.continueAsync(passed, i, state, rowNumber, raw);
      if (!passed) return undefined;
    }
    return this.result(state, rowNumber, raw);
  }

  private async continueAsync(
    pending: Promise<boolean>,
    at: number,
    state: RowState,
    rowNumber: number,
    raw: Row,
  ): Promise<StepResult | undefined> {
    if (!(await pending)) return undefined;
    for (const op of this.ops.slice(at + 1)) if (!(await op(state, this.seenKeys))) return undefined;
    return this.result(state, rowNumber, raw);
  }

  private result(state: RowState, rowNumber: number, raw: Row): StepResult {
    const generated = this.target.generatedKey;
    if (generated) state.row[generated] = raw[generated];
    const row = this.finalRow(state);
    if (state.reasons.length) return { ok: false, rowNumber, raw: { ...raw }, reasons: state.reasons };
    for (const key of state.keys) this.seenKeys.add(key);
    return { ok: true, rowNumber, row };
  }

  private finalRow(state: RowState): Row {
    const row: Row = {};
    for (const column of this.target.columns) {
      const value = state.row[column.name];
      if (state.failed?.has(column.name)) continue;
      // An empty CSV cell in a column that is not text means no value, as the cast step reads it.
      if (value === undefined || value === null || (value === "" && column.type !== "STRING")) {
        row[column.name] = null;
        if (this.target.keyColumns.includes(column.name))
          state.reasons.push(`key column "${column.name}" is missing`);
        else if (!column.nullable) state.reasons.push(`column "${column.name}" is required`);
        continue;
      }
      try {
        row[column.name] = toRepresentation(column, value);
      } catch (error) {
        if (!(error instanceof ValueError)) throw error;
        state.reasons.push(`column "${column.name}" (${column.type}) ${error.message}`);
      }
    }
    return row;
  }

  newFields(): string[] {
    return [...this.sourceFields].filter((f) => !this.uses(f)).sort();
  }

  uses(field: string): boolean {
    return this.used.has(field) || this.target.columns.some((c) => c.name === field);
  }

  stats() {
    return { ...this.counts };
  }
}
