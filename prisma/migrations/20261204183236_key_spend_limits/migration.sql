-- CreateEnum
CREATE TYPE "spend_period" AS ENUM ('DAY', 'MONTH');

-- AlterTable
ALTER TABLE "api_keys" ADD COLUMN     "daily_spend_limit" BIGINT,
ADD COLUMN     "dataset_ids" UUID[] DEFAULT ARRAY[]::UUID[],
ADD COLUMN     "monthly_spend_limit" BIGINT;

-- AlterTable
ALTER TABLE "credit_transactions" ADD COLUMN     "api_key_id" UUID;

-- CreateTable
CREATE TABLE "api_key_spend" (
    "api_key_id" UUID NOT NULL,
    "period" "spend_period" NOT NULL,
    "period_start" DATE NOT NULL,
    "spent" BIGINT NOT NULL DEFAULT 0,

    CONSTRAINT "api_key_spend_pkey" PRIMARY KEY ("api_key_id","period","period_start")
);

-- AddForeignKey
ALTER TABLE "api_key_spend" ADD CONSTRAINT "api_key_spend_api_key_id_fkey" FOREIGN KEY ("api_key_id") REFERENCES "api_keys"("id") ON DELETE CASCADE ON UPDATE CASCADE;
