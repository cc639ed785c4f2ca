// The two-shard ClickHouse cluster of `scripts/services.sh cluster`. scripts/test.sh starts it and
// exports its URLs; a file run on its own (npx vitest run …) reads the same values from the file
// the script writes. No cluster is an error, never a skipped test: CI must not pass without it.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export interface TestCluster {
  /** The cluster's name in the servers' <remote_servers>. */
  name: string;
  /** HTTP URL of shard 01: the app's CLICKHOUSE_URL. */
  url: string;
  /** HTTP URL of each shard's server, in shard order, to look at what each one stores. */
  shardUrls: string[];
}

const ENV_FILE = fileURLToPath(new URL("../../.data/cluster/cluster.env", import.meta.url));

function fromFile(): Record<string, string> {
  try {
    const lines = readFileSync(ENV_FILE, "utf8").split("\n");
    return Object.fromEntries(
      lines
        .filter((l) => /^[A-Z_0-9]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
  } catch {
    return {};
  }
}

export function testCluster(): TestCluster {
  const env = { ...fromFile(), ...process.env };
  const name = env.DATAHUS_TEST_CLUSTER_NAME;
  const url = env.DATAHUS_TEST_CLUSTER_URL;
  const shardUrls = (env.DATAHUS_TEST_CLUSTER_SHARD_URLS ?? "").split(",").filter(Boolean);
  if (!name || !url || shardUrls.length < 2) {
    throw new Error(
      "No ClickHouse cluster for the cluster tests: run `bash scripts/services.sh cluster` " +
        "(scripts/test.sh does), or set DATAHUS_TEST_CLUSTER_NAME, DATAHUS_TEST_CLUSTER_URL and " +
        "DATAHUS_TEST_CLUSTER_SHARD_URLS",
    );
  }
  return { name, url, shardUrls };
}
