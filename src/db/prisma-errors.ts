// PostgreSQL/Prisma errors clients can act on, translated in one place. The original error is
// kept as `cause`; everything else is rethrown untouched (and masked as an internal error).
import { AppError } from "../errors.js";
import { Prisma } from "../generated/prisma/client.js";

/**
 * A unique constraint refused the write (PostgreSQL 23505): Prisma P2002 from a model query,
 * P2010 carrying the PostgreSQL code from a raw one.
 */
export function isUniqueViolation(error: unknown): error is Prisma.PrismaClientKnownRequestError {
  if (!(error instanceof Prisma.PrismaClientKnownRequestError)) return false;
  if (error.code === "P2002") return true;
  const adapter = error.meta?.driverAdapterError as { cause?: { originalCode?: string } } | undefined;
  return error.code === "P2010" && adapter?.cause?.originalCode === "23505";
}

export function translatePrismaError(error: unknown, what = "value"): never {
  if (isUniqueViolation(error)) {
    const target = (error.meta?.target as string[] | string | undefined) ?? what;
    throw new AppError(
      "CONFLICT",
      `That ${what} is already taken`,
      { field: String(target) },
      { cause: error },
    );
  }
  throw error;
}
