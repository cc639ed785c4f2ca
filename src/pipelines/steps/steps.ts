// The declarative steps a pipeline applies to each source record, as stored in Pipeline.steps
// (plain JSON). The discriminator is `op` because `validate` has a `type` option of its own.
// zod checks the shapes; compile.ts checks what needs the whole chain and the dataset's columns.
import { z } from "zod";
import { COLUMN_TYPES } from "../../catalog/columns.js";

const field = z.string().min(1).max(200);
const fields = z.array(field).min(1).max(1000);
const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const expression = z.string().min(1).max(10_000);
const columnType = z.enum(COLUMN_TYPES);

export const StepSchema = z.discriminatedUnion("op", [
  z.strictObject({ op: z.literal("select"), fields }),
  // Either one field (`from`, `to`) or several at once (`map`: old name → new name).
  z.strictObject({
    op: z.literal("rename"),
    from: field.optional(),
    to: field.optional(),
    map: z.record(z.string(), field).optional(),
  }),
  z.strictObject({
    op: z.literal("cast"),
    field,
    to: columnType,
    /** DATE and DATETIME: the text's layout, from the tokens YYYY MM M DD D HH H mm ss. */
    format: z.string().min(1).max(50).optional(),
    /** Numbers: the decimal separator; the other of "." and "," (and spaces, ') group thousands. */
    decimalSeparator: z.enum([".", ","]).optional(),
  }),
  /** Without `fields`, every text field. */
  z.strictObject({ op: z.literal("trim"), fields: fields.optional() }),
  /** Sets the field when it is missing, null or empty text. */
  z.strictObject({ op: z.literal("default"), field, value: scalar }),
  /** Keeps the rows for which the JSONata expression is truthy; the others are skipped. */
  z.strictObject({ op: z.literal("filter"), expression }),
  z.strictObject({ op: z.literal("derive"), field, expression }),
  /** Keeps the first row of each key within a run; later ones are rejected. */
  z.strictObject({ op: z.literal("dedupe"), keys: fields }),
  z.strictObject({
    op: z.literal("validate"),
    field,
    required: z.boolean().optional(),
    type: columnType.optional(),
    enum: z.array(scalar).min(1).optional(),
    pattern: z.string().min(1).max(1000).optional(),
    min: z.union([z.number(), z.string()]).optional(),
    max: z.union([z.number(), z.string()]).optional(),
    minLength: z.number().int().nonnegative().optional(),
    maxLength: z.number().int().nonnegative().optional(),
  }),
]);

export type Step = z.infer<typeof StepSchema>;
export type StepOf<Op extends Step["op"]> = Extract<Step, { op: Op }>;

export const StepsSchema = z.array(StepSchema).max(200);
