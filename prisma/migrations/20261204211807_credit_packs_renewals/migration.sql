-- CreateEnum
CREATE TYPE "payment_provider" AS ENUM ('STRIPE', 'INVOICE');

-- CreateEnum
CREATE TYPE "credit_order_status" AS ENUM ('PENDING', 'PAID', 'CANCELLED');

-- AlterTable
ALTER TABLE "purchases" ADD COLUMN     "auto_renew" BOOLEAN NOT NULL DEFAULT true,
ADD COLUMN     "renewal_failed_for" TIMESTAMPTZ(3);

-- CreateTable
CREATE TABLE "credit_packs" (
    "id" UUID NOT NULL,
    "code" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "credits" BIGINT NOT NULL,
    "price_cents" INTEGER NOT NULL,
    "currency" TEXT NOT NULL DEFAULT 'usd',
    "active" BOOLEAN NOT NULL DEFAULT true,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "credit_packs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "credit_orders" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "pack_id" UUID NOT NULL,
    "credits" BIGINT NOT NULL,
    "price_cents" INTEGER NOT NULL,
    "currency" TEXT NOT NULL,
    "provider" "payment_provider" NOT NULL,
    "status" "credit_order_status" NOT NULL DEFAULT 'PENDING',
    "provider_reference" TEXT,
    "checkout_url" TEXT,
    "idempotency_key" TEXT,
    "note" TEXT,
    "paid_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "credit_orders_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "payment_events" (
    "provider" "payment_provider" NOT NULL,
    "event_id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "order_id" UUID,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "payment_events_pkey" PRIMARY KEY ("provider","event_id")
);

-- CreateIndex
CREATE UNIQUE INDEX "credit_packs_code_key" ON "credit_packs"("code");

-- CreateIndex
CREATE UNIQUE INDEX "credit_orders_provider_reference_key" ON "credit_orders"("provider_reference");

-- CreateIndex
CREATE INDEX "credit_orders_account_id_id_idx" ON "credit_orders"("account_id", "id");

-- CreateIndex
CREATE UNIQUE INDEX "credit_orders_account_id_idempotency_key_key" ON "credit_orders"("account_id", "idempotency_key");

-- AddForeignKey
ALTER TABLE "credit_orders" ADD CONSTRAINT "credit_orders_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "credit_orders" ADD CONSTRAINT "credit_orders_pack_id_fkey" FOREIGN KEY ("pack_id") REFERENCES "credit_packs"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- Hand-written: a pack grants credits and is never priced below zero.
ALTER TABLE "credit_packs" ADD CONSTRAINT "credit_packs_credits_check" CHECK ("credits" > 0 AND "price_cents" >= 0);
