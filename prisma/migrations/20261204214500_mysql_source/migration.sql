-- AlterEnum
ALTER TYPE "source_type" ADD VALUE 'MYSQL';
