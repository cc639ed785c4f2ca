import type { PrismaClient, Source } from "../generated/prisma/client.js";
import { ModelReader } from "../db/model-reader.js";
import type { PageLimits } from "../pagination.js";

export class SourceService {
  readonly sources: ModelReader<Source>;

  constructor(prisma: PrismaClient, limits: PageLimits) {
    this.sources = new ModelReader(prisma.source, "source", limits);
  }
}
