-- AlterEnum
ALTER TYPE "source_type" ADD VALUE 'STREAM';

-- AlterEnum
ALTER TYPE "pipeline_run_trigger" ADD VALUE 'STREAM';
