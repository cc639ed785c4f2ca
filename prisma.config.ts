// Read by the Prisma CLI only. The application gets its URL from src/config.ts; this file is the one
// other reader of process.env, because the CLI loads it on its own.
import { defineConfig } from "prisma/config";

export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: {
    url: process.env.DATABASE_URL || "postgresql://postgres@127.0.0.1:5432/datahus",
  },
});
