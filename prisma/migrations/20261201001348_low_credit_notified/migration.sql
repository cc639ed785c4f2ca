-- AlterTable
ALTER TABLE "accounts" ADD COLUMN     "low_credit_notified" BOOLEAN NOT NULL DEFAULT false;
