-- CreateEnum
CREATE TYPE "earnings_entry_kind" AS ENUM ('SALE', 'REFUND', 'PAYOUT', 'PAYOUT_REVERSAL');

-- CreateEnum
CREATE TYPE "payout_status" AS ENUM ('REQUESTED', 'PAID', 'REJECTED');

-- AlterTable
ALTER TABLE "sales" ADD COLUMN     "refunded_at" TIMESTAMPTZ(3);

-- CreateTable
CREATE TABLE "platform_settings" (
    "id" INTEGER NOT NULL DEFAULT 1,
    "fee_basis_points" INTEGER NOT NULL DEFAULT 0,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "platform_settings_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "earnings_accounts" (
    "account_id" UUID NOT NULL,
    "balance" BIGINT NOT NULL DEFAULT 0,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "earnings_accounts_pkey" PRIMARY KEY ("account_id")
);

-- CreateTable
CREATE TABLE "earnings_entries" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "kind" "earnings_entry_kind" NOT NULL,
    "gross" BIGINT NOT NULL DEFAULT 0,
    "fee" BIGINT NOT NULL DEFAULT 0,
    "fee_basis_points" INTEGER NOT NULL DEFAULT 0,
    "amount" BIGINT NOT NULL,
    "balance_after" BIGINT NOT NULL,
    "idempotency_key" TEXT NOT NULL,
    "sale_id" UUID,
    "payout_id" UUID,
    "dataset_id" UUID,
    "buyer_account_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "earnings_entries_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "payouts" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "amount" BIGINT NOT NULL,
    "status" "payout_status" NOT NULL DEFAULT 'REQUESTED',
    "idempotency_key" TEXT,
    "note" TEXT,
    "decided_by" UUID,
    "decided_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "payouts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "admin_log" (
    "id" UUID NOT NULL,
    "actor_id" UUID,
    "action" TEXT NOT NULL,
    "target_type" TEXT NOT NULL,
    "target_id" TEXT NOT NULL,
    "details" JSONB NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "admin_log_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "earnings_entries_account_id_id_idx" ON "earnings_entries"("account_id", "id");

-- CreateIndex
CREATE INDEX "earnings_entries_sale_id_idx" ON "earnings_entries"("sale_id");

-- CreateIndex
CREATE UNIQUE INDEX "earnings_entries_account_id_idempotency_key_key" ON "earnings_entries"("account_id", "idempotency_key");

-- CreateIndex
CREATE INDEX "payouts_account_id_id_idx" ON "payouts"("account_id", "id");

-- CreateIndex
CREATE INDEX "payouts_status_id_idx" ON "payouts"("status", "id");

-- CreateIndex
CREATE UNIQUE INDEX "payouts_account_id_idempotency_key_key" ON "payouts"("account_id", "idempotency_key");

-- CreateIndex
CREATE INDEX "admin_log_target_type_target_id_idx" ON "admin_log"("target_type", "target_id");

-- AddForeignKey
ALTER TABLE "earnings_accounts" ADD CONSTRAINT "earnings_accounts_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "earnings_entries" ADD CONSTRAINT "earnings_entries_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "payouts" ADD CONSTRAINT "payouts_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- Hand-written (Prisma does not model CHECK constraints, and its diffs ignore them).
ALTER TABLE "platform_settings" ADD CONSTRAINT "platform_settings_single_row" CHECK ("id" = 1);
ALTER TABLE "platform_settings" ADD CONSTRAINT "platform_settings_fee_check"
  CHECK ("fee_basis_points" BETWEEN 0 AND 10000);
ALTER TABLE "payouts" ADD CONSTRAINT "payouts_amount_check" CHECK ("amount" > 0);
INSERT INTO "platform_settings" ("id", "fee_basis_points", "updated_at") VALUES (1, 0, CURRENT_TIMESTAMP);
