-- AlterTable
ALTER TABLE "datasets" ADD COLUMN     "sample_filter" JSONB,
ADD COLUMN     "sample_rows" INTEGER;
