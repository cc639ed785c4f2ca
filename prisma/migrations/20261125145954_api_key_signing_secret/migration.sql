-- AlterTable
ALTER TABLE "api_keys" ADD COLUMN     "signing_secret_encrypted" TEXT;
