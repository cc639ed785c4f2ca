-- CreateEnum
CREATE TYPE "duplicate_key_policy" AS ENUM ('LAST_WINS', 'FIRST_WINS', 'QUARANTINE');

-- AlterTable
ALTER TABLE "pipeline_runs" ADD COLUMN     "rows_duplicate" BIGINT NOT NULL DEFAULT 0,
ADD COLUMN     "rows_filtered" BIGINT NOT NULL DEFAULT 0;

-- AlterTable
ALTER TABLE "pipelines" ADD COLUMN     "allow_empty_keys" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "duplicate_keys" "duplicate_key_policy" NOT NULL DEFAULT 'LAST_WINS',
ADD COLUMN     "min_live_row_ratio" DOUBLE PRECISION NOT NULL DEFAULT 0.5,
ADD COLUMN     "row_key_column" TEXT;
