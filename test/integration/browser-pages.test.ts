// The pages a person opens in a browser, in Debian's headless Chromium with every request to
// anything but loopback refused: GraphiQL at /graphql, served from the package, runs a query with
// the caller's key and renders something (the screenshot is checked for more than one colour).
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = join(process.cwd(), ".data", "screenshots");

let stack: TestStack;
let browser: Browser;
let buyer: TestAccount;
const refused: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error("chromium is missing: run scripts/services.sh");
  stack = await startStack();
  buyer = await stack.signup("Browser Buyer");
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

/** A page whose requests to anything but the loopback server are aborted and recorded. */
async function offlinePage(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (
      ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname) ||
      ["blob:", "data:"].includes(url.protocol)
    ) {
      return route.continue();
    }
    refused.push(url.href);
    return route.abort();
  });
  return page;
}

/** How many distinct colours a PNG has, counted by Chromium itself on a canvas. */
async function distinctColours(page: Page, png: Buffer): Promise<number> {
  // Runs in the page (a string: this project's TypeScript has no DOM types).
  const count = `(async () => {
    const image = new Image();
    image.src = "data:image/png;base64,${png.toString("base64")}";
    await image.decode();
    const canvas = document.createElement("canvas");
    canvas.width = image.width;
    canvas.height = image.height;
    const context = canvas.getContext("2d");
    context.drawImage(image, 0, 0);
    const { data } = context.getImageData(0, 0, image.width, image.height);
    const colours = new Set();
    for (let i = 0; i < data.length; i += 28) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    return colours.size;
  })()`;
  return page.evaluate<number>(count);
}

async function screenshot(page: Page, name: string): Promise<Buffer> {
  await mkdir(SHOTS, { recursive: true });
  const png = await page.screenshot({ fullPage: false });
  await writeFile(join(SHOTS, `${name}.png`), png);
  return png;
}

describe("GraphiQL at /graphql", () => {
  it("loads offline from the package and runs a query with the caller's key", async () => {
    const page = await offlinePage();
    // GraphiQL opens the query in the address (as its share links do) with the key in the fragment.
    const query = encodeURIComponent("{ me { authenticatedWith scopes } }");
    const response = await page.goto(
      `${stack.url}/graphql?query=${query}#key=${encodeURIComponent(buyer.secret)}`,
    );
    expect(response?.status()).toBe(200);
    expect(response?.headers()["content-type"]).toMatch(/text\/html/);
    await page.locator(".graphiql-container").first().waitFor({ timeout: 60_000 });
    // The key from the fragment is in the headers editor and left out of the address bar.
    expect(page.url()).not.toContain(buyer.secret);

    const ours = (postData: string | null) => /authenticatedWith/.test(postData ?? "");
    const sent = page.waitForRequest((r) => r.url().endsWith("/graphql") && ours(r.postData()));
    const answered = page.waitForResponse(
      (r) => r.url().endsWith("/graphql") && ours(r.request().postData()),
    );
    await page.locator(".graphiql-execute-button").first().click();
    const request = await sent;
    expect(request.headers()["x-api-key"]).toBe(buyer.secret);
    const res = await answered;
    expect(res.status()).toBe(200);
    const body = (await res.json()) as { data?: { me: { authenticatedWith: string } } };
    expect(body.data?.me.authenticatedWith).toBe("API_KEY");
    await page.locator(".graphiql-response").getByText("API_KEY").first().waitFor({ timeout: 30_000 });

    const png = await screenshot(page, "graphiql");
    expect(png.length).toBeGreaterThan(10_000);
    expect(await distinctColours(page, png)).toBeGreaterThan(10);
    await page.close();
  }, 120_000);

  it("is not served in production unless asked for", async () => {
    const own = await startStack({
      NODE_ENV: "production",
      JWT_SECRET: "x".repeat(40),
      ENCRYPTION_KEY: Buffer.alloc(32, 7).toString("base64"),
    });
    try {
      const res = await fetch(`${own.url}/graphql`, { headers: { accept: "text/html" } });
      expect(res.headers.get("content-type")).not.toMatch(/text\/html/);
      expect((await fetch(`${own.url}/graphql/ide/graphiql.js`)).status).toBe(404);
    } finally {
      await own.close();
    }
  });
});

describe("/docs", () => {
  it("renders the REST API's OpenAPI document offline", async () => {
    const page = await offlinePage();
    const response = await page.goto(`${stack.url}/docs`);
    expect(response?.status()).toBe(200);
    await page.getByText("Datahus REST API").first().waitFor({ timeout: 60_000 });
    await page.getByText("/api/v1/datasets/{slug}/records/{key}").first().waitFor({ state: "attached" });
    const png = await screenshot(page, "docs");
    expect(await distinctColours(page, png)).toBeGreaterThan(10);
    await page.close();
  }, 120_000);
});

describe("offline", () => {
  it("no page asked for anything beyond loopback that it needed", () => {
    // Requests refused are recorded; the pages above rendered without them.
    // Redoc's "powered by" footer links its logo from its CDN: an image, refused, changes nothing
    // the page needs. Scripts, styles and the IDE's packages must all come from loopback.
    const images = /\.(svg|png|gif|ico|jpe?g)$/;
    for (const url of refused.filter((u) => !images.test(new URL(u).pathname))) {
      expect(url).not.toMatch(/graphiql|react|monaco|redoc|\.css|\.js$/);
    }
  });
});
