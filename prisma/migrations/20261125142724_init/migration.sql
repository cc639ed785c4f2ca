-- CreateEnum
CREATE TYPE "plan_code" AS ENUM ('FREE', 'BASIC', 'PRO', 'ENTERPRISE');

-- CreateEnum
CREATE TYPE "account_status" AS ENUM ('ACTIVE', 'SUSPENDED');

-- CreateEnum
CREATE TYPE "user_role" AS ENUM ('ADMIN', 'PUBLISHER', 'BUYER');

-- CreateEnum
CREATE TYPE "source_type" AS ENUM ('HTTP', 'FILE', 'SFTP', 'S3', 'POSTGRES', 'PUSH');

-- CreateEnum
CREATE TYPE "pipeline_mode" AS ENUM ('FULL_REFRESH', 'INCREMENTAL');

-- CreateEnum
CREATE TYPE "new_field_policy" AS ENUM ('IGNORE', 'ADD_COLUMN', 'FAIL');

-- CreateEnum
CREATE TYPE "pipeline_run_status" AS ENUM ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED');

-- CreateEnum
CREATE TYPE "pipeline_run_trigger" AS ENUM ('MANUAL', 'SCHEDULE', 'PUSH');

-- CreateEnum
CREATE TYPE "log_level" AS ENUM ('DEBUG', 'INFO', 'WARN', 'ERROR');

-- CreateEnum
CREATE TYPE "dataset_access" AS ENUM ('OPEN', 'METERED', 'PURCHASED');

-- CreateEnum
CREATE TYPE "purchase_term" AS ENUM ('ONE_TIME', 'MONTHLY');

-- CreateEnum
CREATE TYPE "dataset_status" AS ENUM ('DRAFT', 'PUBLISHED', 'UNPUBLISHED', 'ARCHIVED');

-- CreateEnum
CREATE TYPE "purchase_status" AS ENUM ('ACTIVE', 'EXPIRED', 'CANCELLED');

-- CreateEnum
CREATE TYPE "sale_kind" AS ENUM ('PURCHASE', 'SUBSCRIPTION', 'METERED');

-- CreateEnum
CREATE TYPE "credit_transaction_kind" AS ENUM ('TOP_UP', 'CHARGE', 'RESERVATION', 'RELEASE', 'PURCHASE', 'REFUND', 'SALE_PROCEEDS');

-- CreateEnum
CREATE TYPE "delivery_kind" AS ENUM ('WEBHOOK', 'SFTP', 'S3');

-- CreateEnum
CREATE TYPE "delivery_format" AS ENUM ('CSV', 'NDJSON', 'PARQUET', 'JSON');

-- CreateEnum
CREATE TYPE "delivery_trigger" AS ENUM ('ON_UPDATE', 'SCHEDULE');

-- CreateEnum
CREATE TYPE "delivery_mode" AS ENUM ('SNAPSHOT', 'INCREMENTAL');

-- CreateEnum
CREATE TYPE "delivery_status" AS ENUM ('ACTIVE', 'PAUSED', 'DISABLED');

-- CreateEnum
CREATE TYPE "delivery_attempt_status" AS ENUM ('PENDING', 'SUCCEEDED', 'FAILED', 'DEAD');

-- CreateTable
CREATE TABLE "plans" (
    "id" UUID NOT NULL,
    "code" "plan_code" NOT NULL,
    "name" TEXT NOT NULL,
    "requests_per_minute" INTEGER NOT NULL,
    "hourly_quota" INTEGER,
    "monthly_quota" INTEGER,
    "starting_credits" BIGINT NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "plans_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "accounts" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "slug" TEXT NOT NULL,
    "plan_id" UUID NOT NULL,
    "credit_balance" BIGINT NOT NULL DEFAULT 0,
    "low_credit_threshold" BIGINT,
    "rate_limit_per_minute" INTEGER,
    "status" "account_status" NOT NULL DEFAULT 'ACTIVE',
    "suspended_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "accounts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "users" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "email" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "role" "user_role" NOT NULL,
    "password_hash" TEXT,
    "last_login_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "api_keys" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "user_id" UUID,
    "name" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "secret_hash" TEXT NOT NULL,
    "scopes" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "expires_at" TIMESTAMPTZ(3),
    "revoked_at" TIMESTAMPTZ(3),
    "last_used_at" TIMESTAMPTZ(3),
    "rotated_from_id" UUID,
    "grace_until" TIMESTAMPTZ(3),
    "require_signature" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "api_keys_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "sources" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "type" "source_type" NOT NULL,
    "config" JSONB NOT NULL,
    "secrets_encrypted" TEXT,
    "schedule" TEXT,
    "state" JSONB,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "deleted_at" TIMESTAMPTZ(3),

    CONSTRAINT "sources_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "pipelines" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "source_id" UUID NOT NULL,
    "dataset_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "steps" JSONB NOT NULL,
    "mode" "pipeline_mode" NOT NULL DEFAULT 'FULL_REFRESH',
    "schedule" TEXT,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "new_field_policy" "new_field_policy" NOT NULL DEFAULT 'IGNORE',
    "cursor" JSONB,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "pipelines_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "pipeline_runs" (
    "id" UUID NOT NULL,
    "pipeline_id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "status" "pipeline_run_status" NOT NULL DEFAULT 'QUEUED',
    "trigger" "pipeline_run_trigger" NOT NULL,
    "job_id" TEXT,
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),
    "rows_read" BIGINT NOT NULL DEFAULT 0,
    "rows_written" BIGINT NOT NULL DEFAULT 0,
    "rows_rejected" BIGINT NOT NULL DEFAULT 0,
    "bytes_read" BIGINT NOT NULL DEFAULT 0,
    "progress" DOUBLE PRECISION,
    "error" TEXT,
    "cursor_checkpoint" JSONB,
    "new_fields" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "pipeline_runs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "pipeline_logs" (
    "id" UUID NOT NULL,
    "run_id" UUID NOT NULL,
    "pipeline_id" UUID NOT NULL,
    "level" "log_level" NOT NULL,
    "message" TEXT NOT NULL,
    "data" JSONB,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "pipeline_logs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "datasets" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "slug" TEXT NOT NULL,
    "title" TEXT NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "category" TEXT NOT NULL,
    "tags" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "columns" JSONB NOT NULL,
    "key_columns" TEXT[],
    "access" "dataset_access" NOT NULL DEFAULT 'METERED',
    "price_per_100_records" BIGINT NOT NULL DEFAULT 0,
    "purchase_price" BIGINT,
    "purchase_term" "purchase_term",
    "status" "dataset_status" NOT NULL DEFAULT 'DRAFT',
    "version" INTEGER NOT NULL DEFAULT 0,
    "row_count" BIGINT NOT NULL DEFAULT 0,
    "table_name" TEXT NOT NULL,
    "last_updated_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "datasets_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "purchases" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "dataset_id" UUID NOT NULL,
    "status" "purchase_status" NOT NULL DEFAULT 'ACTIVE',
    "expires_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "purchases_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "sales" (
    "id" UUID NOT NULL,
    "dataset_id" UUID NOT NULL,
    "buyer_account_id" UUID NOT NULL,
    "seller_account_id" UUID NOT NULL,
    "purchase_id" UUID,
    "kind" "sale_kind" NOT NULL,
    "credits" BIGINT NOT NULL,
    "records" BIGINT NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "sales_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "credit_transactions" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "kind" "credit_transaction_kind" NOT NULL,
    "amount" BIGINT NOT NULL,
    "balance_after" BIGINT NOT NULL,
    "idempotency_key" TEXT,
    "reference" TEXT,
    "dataset_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "credit_transactions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "deliveries" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "dataset_id" UUID NOT NULL,
    "kind" "delivery_kind" NOT NULL,
    "config" JSONB NOT NULL,
    "secrets_encrypted" TEXT,
    "format" "delivery_format",
    "gzip" BOOLEAN NOT NULL DEFAULT false,
    "trigger" "delivery_trigger" NOT NULL DEFAULT 'ON_UPDATE',
    "schedule" TEXT,
    "mode" "delivery_mode" NOT NULL DEFAULT 'INCREMENTAL',
    "event_types" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "status" "delivery_status" NOT NULL DEFAULT 'ACTIVE',
    "consecutive_failures" INTEGER NOT NULL DEFAULT 0,
    "last_delivered_version" INTEGER,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "deliveries_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "delivery_attempts" (
    "id" UUID NOT NULL,
    "delivery_id" UUID NOT NULL,
    "event_id" TEXT NOT NULL,
    "event_type" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "status" "delivery_attempt_status" NOT NULL DEFAULT 'PENDING',
    "http_status" INTEGER,
    "duration_ms" INTEGER,
    "response_excerpt" TEXT,
    "error" TEXT,
    "next_attempt_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "delivery_attempts_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "plans_code_key" ON "plans"("code");

-- CreateIndex
CREATE UNIQUE INDEX "accounts_slug_key" ON "accounts"("slug");

-- CreateIndex
CREATE INDEX "accounts_plan_id_idx" ON "accounts"("plan_id");

-- CreateIndex
CREATE UNIQUE INDEX "users_email_key" ON "users"("email");

-- CreateIndex
CREATE INDEX "users_account_id_id_idx" ON "users"("account_id", "id");

-- CreateIndex
CREATE UNIQUE INDEX "api_keys_prefix_key" ON "api_keys"("prefix");

-- CreateIndex
CREATE UNIQUE INDEX "api_keys_secret_hash_key" ON "api_keys"("secret_hash");

-- CreateIndex
CREATE UNIQUE INDEX "api_keys_rotated_from_id_key" ON "api_keys"("rotated_from_id");

-- CreateIndex
CREATE INDEX "api_keys_account_id_id_idx" ON "api_keys"("account_id", "id");

-- CreateIndex
CREATE INDEX "api_keys_user_id_idx" ON "api_keys"("user_id");

-- CreateIndex
CREATE INDEX "sources_account_id_id_idx" ON "sources"("account_id", "id");

-- CreateIndex
CREATE INDEX "pipelines_account_id_id_idx" ON "pipelines"("account_id", "id");

-- CreateIndex
CREATE INDEX "pipelines_source_id_idx" ON "pipelines"("source_id");

-- CreateIndex
CREATE INDEX "pipelines_dataset_id_idx" ON "pipelines"("dataset_id");

-- CreateIndex
CREATE INDEX "pipeline_runs_pipeline_id_id_idx" ON "pipeline_runs"("pipeline_id", "id");

-- CreateIndex
CREATE INDEX "pipeline_runs_account_id_id_idx" ON "pipeline_runs"("account_id", "id");

-- CreateIndex
CREATE INDEX "pipeline_runs_status_idx" ON "pipeline_runs"("status");

-- CreateIndex
CREATE INDEX "pipeline_logs_pipeline_id_id_idx" ON "pipeline_logs"("pipeline_id", "id");

-- CreateIndex
CREATE INDEX "pipeline_logs_run_id_id_idx" ON "pipeline_logs"("run_id", "id");

-- CreateIndex
CREATE UNIQUE INDEX "datasets_slug_key" ON "datasets"("slug");

-- CreateIndex
CREATE UNIQUE INDEX "datasets_table_name_key" ON "datasets"("table_name");

-- CreateIndex
CREATE INDEX "datasets_account_id_id_idx" ON "datasets"("account_id", "id");

-- CreateIndex
CREATE INDEX "datasets_category_idx" ON "datasets"("category");

-- CreateIndex
CREATE INDEX "datasets_status_idx" ON "datasets"("status");

-- CreateIndex
CREATE INDEX "purchases_dataset_id_idx" ON "purchases"("dataset_id");

-- CreateIndex
CREATE UNIQUE INDEX "purchases_account_id_dataset_id_key" ON "purchases"("account_id", "dataset_id");

-- CreateIndex
CREATE INDEX "sales_seller_account_id_created_at_idx" ON "sales"("seller_account_id", "created_at");

-- CreateIndex
CREATE INDEX "sales_buyer_account_id_created_at_idx" ON "sales"("buyer_account_id", "created_at");

-- CreateIndex
CREATE INDEX "sales_dataset_id_created_at_idx" ON "sales"("dataset_id", "created_at");

-- CreateIndex
CREATE INDEX "sales_purchase_id_idx" ON "sales"("purchase_id");

-- CreateIndex
CREATE INDEX "credit_transactions_account_id_id_idx" ON "credit_transactions"("account_id", "id");

-- CreateIndex
CREATE INDEX "credit_transactions_dataset_id_idx" ON "credit_transactions"("dataset_id");

-- CreateIndex
CREATE UNIQUE INDEX "credit_transactions_account_id_idempotency_key_key" ON "credit_transactions"("account_id", "idempotency_key");

-- CreateIndex
CREATE INDEX "deliveries_account_id_id_idx" ON "deliveries"("account_id", "id");

-- CreateIndex
CREATE INDEX "deliveries_dataset_id_idx" ON "deliveries"("dataset_id");

-- CreateIndex
CREATE INDEX "delivery_attempts_delivery_id_id_idx" ON "delivery_attempts"("delivery_id", "id");

-- CreateIndex
CREATE UNIQUE INDEX "delivery_attempts_delivery_id_event_id_attempt_key" ON "delivery_attempts"("delivery_id", "event_id", "attempt");

-- AddForeignKey
ALTER TABLE "accounts" ADD CONSTRAINT "accounts_plan_id_fkey" FOREIGN KEY ("plan_id") REFERENCES "plans"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "users" ADD CONSTRAINT "users_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_rotated_from_id_fkey" FOREIGN KEY ("rotated_from_id") REFERENCES "api_keys"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "sources" ADD CONSTRAINT "sources_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "pipelines" ADD CONSTRAINT "pipelines_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "pipelines" ADD CONSTRAINT "pipelines_source_id_fkey" FOREIGN KEY ("source_id") REFERENCES "sources"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "pipelines" ADD CONSTRAINT "pipelines_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "datasets"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "pipeline_runs" ADD CONSTRAINT "pipeline_runs_pipeline_id_fkey" FOREIGN KEY ("pipeline_id") REFERENCES "pipelines"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "pipeline_runs" ADD CONSTRAINT "pipeline_runs_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "pipeline_logs" ADD CONSTRAINT "pipeline_logs_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "pipeline_runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "pipeline_logs" ADD CONSTRAINT "pipeline_logs_pipeline_id_fkey" FOREIGN KEY ("pipeline_id") REFERENCES "pipelines"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "datasets" ADD CONSTRAINT "datasets_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "purchases" ADD CONSTRAINT "purchases_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "purchases" ADD CONSTRAINT "purchases_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "datasets"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "sales" ADD CONSTRAINT "sales_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "datasets"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "sales" ADD CONSTRAINT "sales_buyer_account_id_fkey" FOREIGN KEY ("buyer_account_id") REFERENCES "accounts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "sales" ADD CONSTRAINT "sales_seller_account_id_fkey" FOREIGN KEY ("seller_account_id") REFERENCES "accounts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "sales" ADD CONSTRAINT "sales_purchase_id_fkey" FOREIGN KEY ("purchase_id") REFERENCES "purchases"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "credit_transactions" ADD CONSTRAINT "credit_transactions_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "credit_transactions" ADD CONSTRAINT "credit_transactions_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "datasets"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "deliveries" ADD CONSTRAINT "deliveries_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "deliveries" ADD CONSTRAINT "deliveries_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "datasets"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "delivery_attempts" ADD CONSTRAINT "delivery_attempts_delivery_id_fkey" FOREIGN KEY ("delivery_id") REFERENCES "deliveries"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Hand-written (Prisma does not model CHECK constraints, and its diffs ignore them).
-- A balance never goes below zero, whatever the concurrency (DESIGN.md §5): the conditional debit
-- `UPDATE ... WHERE credit_balance >= $n` is the rule, this constraint is the backstop.
ALTER TABLE "accounts" ADD CONSTRAINT "accounts_credit_balance_check" CHECK ("credit_balance" >= 0);
