// PostgreSQL/Prisma errors clients can act on, translated in one place. The original error is
// kept as `cause`; everything else is rethrown untouched (and masked as an internal error).
import { AppError } from "../errors.js";
import { Prisma } from "../generated/prisma/client.js";

/** A unique constraint refused the write (PostgreSQL 23505, Prisma P2002). */
export function isUniqueViolation(error: unknown): error is Prisma.PrismaClientKnownRequestError {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === "P2002";
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
