-- CreateTable
CREATE TABLE "ingest_batches" (
    "id" UUID NOT NULL,
    "run_id" UUID NOT NULL,
    "content_type" TEXT NOT NULL,
    "body" BYTEA NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ingest_batches_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "ingest_batches_run_id_key" ON "ingest_batches"("run_id");

-- CreateIndex
CREATE INDEX "ingest_batches_created_at_idx" ON "ingest_batches"("created_at");

-- AddForeignKey
ALTER TABLE "ingest_batches" ADD CONSTRAINT "ingest_batches_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "pipeline_runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
