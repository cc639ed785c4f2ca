-- AlterTable
ALTER TABLE "datasets" ADD COLUMN     "column_stats" JSONB,
ADD COLUMN     "column_stats_at" TIMESTAMPTZ(3);
