import { describe, expect, it } from "vitest";
import { validateSettings, type DeliverySettings } from "../../src/deliveries/delivery.config.js";
import { AppError } from "../../src/errors.js";

const webhook: DeliverySettings = {
  kind: "WEBHOOK",
  config: { url: "https://hooks.example.com/in" },
  secrets: null,
  format: null,
  gzip: false,
  trigger: "ON_UPDATE",
  schedule: null,
  mode: "SNAPSHOT",
  eventTypes: [],
};

function problems(settings: Partial<DeliverySettings>, owner = false): string[] {
  try {
    validateSettings({ ...webhook, ...settings }, owner);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe("BAD_USER_INPUT");
    return (error as AppError).fields.problems as string[];
  }
  return [];
}

describe("validateSettings", () => {
  it("accepts a webhook and normalises its event types", () => {
    const settings = validateSettings(
      { ...webhook, eventTypes: ["dataset.updated", "dataset.updated"] },
      false,
    );
    expect(settings.eventTypes).toEqual(["dataset.updated"]);
    expect(settings.secrets).toEqual({});
  });

  it("lists every problem of a webhook at once, naming fields, never values", () => {
    expect(
      problems({
        config: {
          url: "https://user:hunter2@hooks.example.com/",
          extra: 1,
          headers: { Host: "x", ok: "a\nb" },
        },
        format: "CSV",
        trigger: "SCHEDULE",
        schedule: "every day",
        eventTypes: ["pipeline.run.failed"],
      }),
    ).toEqual([
      "config.url: must not carry credentials (use headers in secrets)",
      "config.headers.Host: is set by Datahus",
      "config.headers.ok: must be one line",
      'config: Unrecognized key: "extra"',
      "format: webhooks carry JSON events; leave it out",
      "trigger: webhooks are sent when events happen (ON_UPDATE)",
      "eventTypes: pipeline.run.failed is only for the dataset's publisher",
      "schedule: must be a cron expression of 5 fields, e.g. '0 3 * * *'",
    ]);
  });

  it("lets a dataset's publisher subscribe to its run events", () => {
    expect(problems({ eventTypes: ["pipeline.run.succeeded", "pipeline.run.failed"] }, true)).toEqual([]);
  });

  it("checks SFTP and S3 targets and their credentials, filling defaults", () => {
    const sftp = validateSettings(
      {
        ...webhook,
        kind: "SFTP",
        config: { host: "sftp.example.com", username: "u", folder: "/in" },
        secrets: { privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----" },
        format: "PARQUET",
        mode: "INCREMENTAL",
      },
      false,
    );
    expect(sftp.config).toEqual({
      host: "sftp.example.com",
      port: 22,
      username: "u",
      folder: "/in",
      timeoutMs: 30_000,
    });
    expect(
      problems({
        kind: "SFTP",
        config: { host: "h", username: "u", port: 70000 },
        secrets: {},
        format: null,
      }),
    ).toEqual([
      "config.port: Too big: expected number to be <=65535",
      "config.folder: Invalid input: expected string, received undefined",
      "secrets: password or privateKey is required",
      "format: is required (CSV, NDJSON or PARQUET)",
    ]);
    expect(
      problems({
        kind: "S3",
        config: { bucket: "No_Such" },
        secrets: { accessKeyId: "a", secretAccessKey: "b" },
        format: "JSON",
        eventTypes: ["dataset.updated"],
      }),
    ).toEqual([
      "config.bucket: must be a bucket name: 3-63 lower-case letters, digits, dots, hyphens",
      "format: file drops are CSV, NDJSON or PARQUET",
      "eventTypes: only webhooks subscribe to event types",
    ]);
  });

  it("needs a schedule for SCHEDULE and none otherwise", () => {
    const drop = {
      kind: "S3" as const,
      config: { bucket: "drops" },
      secrets: { accessKeyId: "a", secretAccessKey: "b" },
      format: "CSV" as const,
    };
    expect(problems({ ...drop, trigger: "SCHEDULE" })).toEqual(["schedule: is required for SCHEDULE"]);
    expect(problems({ ...drop, schedule: "0 3 * * *" })).toEqual(["schedule: only with trigger SCHEDULE"]);
    expect(problems({ ...drop, trigger: "SCHEDULE", schedule: "0 3 * * *" })).toEqual([]);
  });
});
