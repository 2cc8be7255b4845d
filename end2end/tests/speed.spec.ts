import { test, expect } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { PrivateApp, binary, profile } from "../app";

// The shop page at its heaviest: a shop of its own with SPEED_PRODUCTS
// products (default 1,000) and SPEED_ORDERS orders (default 20,000; the
// documented check, scripts/ui-speed, loads 1,000,000), loaded by the
// bench's seeding. A fresh browser (nothing cached) must find the page
// interactive, hydrated and answering, within SPEED_LIMIT_MS (default 1,000
// ms) of starting to navigate.
const products = Number(process.env.SPEED_PRODUCTS ?? 1000);
const orders = Number(process.env.SPEED_ORDERS ?? 20_000);
const limitMs = Number(process.env.SPEED_LIMIT_MS ?? 1000);
const loads = 5;

// What a person gets is the release build; a debug build (`cargo leptos
// end-to-end` without --release) is not what is measured.
test.skip(profile() !== "release", "the page's speed is measured on the release build");

let app: PrivateApp;
test.beforeAll(async () => {
  test.setTimeout(30 * 60_000);
  app = await PrivateApp.start({ paymentDelayMs: 0 });
  execFileSync(binary("bench"), ["seed", "--url", app.baseURL, "--redis-url", app.redisURL,
    "--products", String(products), "--orders", String(orders)], {
    env: { ...process.env, ADMIN_TOKEN: app.adminToken },
    stdio: ["ignore", "inherit", "inherit"],
  });
});
test.afterAll(async () => app?.stop());

test(`with ${products} products and ${orders} orders the first page is interactive within ${limitMs} ms`, async ({ browser }) => {
  const timings: number[] = [];
  for (let n = 0; n < loads; n++) {
    const context = await browser.newContext({ baseURL: app.baseURL });
    const page = await context.newPage();
    await page.goto("/", { waitUntil: "commit" });
    // The app marks the moment it is hydrated: from then on every control answers.
    const interactive = await page.waitForFunction(() => {
      const mark = performance.getEntriesByName("stockflow:interactive")[0];
      return mark ? mark.startTime : null;
    }, null, { timeout: 30_000 });
    timings.push(Math.round((await interactive.jsonValue()) as number));

    // It is the whole shop, and it answers.
    const rows = page.getByTestId("orders").locator("tbody tr");
    await expect(rows).toHaveCount(50);
    await expect(page.getByTestId("filter-all").locator(".count")).toHaveText(orders.toLocaleString("en-US"));
    // The order form finds a product among them all as its name is typed.
    await page.getByTestId("order-form").getByRole("combobox", { name: "Product" }).fill("Oak chair");
    await expect(page.getByTestId("order-form").getByRole("option").first()).toContainText("Oak chair");
    if (n === 0) {
      await page.getByRole("button", { name: "Load more orders" }).click();
      await expect(rows).toHaveCount(100);
    }
    await context.close();
  }
  const sorted = [...timings].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  console.log(`interactive after ${timings.join(", ")} ms (median ${median} ms; ${products} products, ${orders} orders)`);
  test.info().annotations.push({ type: "interactive_ms", description: `median ${median} of ${timings.join(", ")}` });
  expect(median).toBeLessThanOrEqual(limitMs);
});

// The same shop on a phone, as Lighthouse's mobile profile throttles it
// (Chrome DevTools protocol: 150 ms round trips, 1.6 Mbit/s down, 750 kbit/s
// up, the CPU 4 times slower, no cache). What is timed is what a person
// waits for: from navigation until the order form reacts, i.e. a product
// chosen in the picker shows its price; the story types as soon as the page
// is hydrated. The goal is 3 s, and it is not met yet (see README.md, "The
// UI's speed"): the figures are printed, and only scripts/ui-speed, which
// sets SPEED_MOBILE_LIMIT_MS=3000, fails over the goal.
const mobileLimitMs = Number(process.env.SPEED_MOBILE_LIMIT_MS ?? Infinity);
const mobileLoads = 3;

test(`on a throttled phone the order form reacts within ${mobileLimitMs === Infinity ? "(no limit)" : mobileLimitMs} ms`, async ({ browser }) => {
  test.setTimeout(5 * 60_000);
  const hydrated: number[] = [];
  const reacted: number[] = [];
  // Where each load's time went: when the HTML, the CSS, the JS and the WASM had arrived.
  const arrivals: string[] = [];
  for (let n = 0; n < mobileLoads; n++) {
    const context = await browser.newContext({ baseURL: app.baseURL, viewport: { width: 390, height: 844 } });
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false,
      latency: 150,
      downloadThroughput: (1.6 * 1024 * 1024) / 8,
      uploadThroughput: (750 * 1024) / 8,
    });
    await cdp.send("Emulation.setCPUThrottlingRate", { rate: 4 });
    // The main thread's long tasks (over 50 ms), to tell where it was busy.
    await page.addInitScript(() => {
      (window as any).__longTasks = [];
      new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) (window as any).__longTasks.push([Math.round(entry.startTime), Math.round(entry.duration)]);
      }).observe({ type: "longtask", buffered: true });
    });
    await page.goto("/", { waitUntil: "commit" });
    const interactive = await page.waitForFunction(() => {
      const mark = performance.getEntriesByName("stockflow:interactive")[0];
      return mark ? mark.startTime : null;
    }, null, { timeout: 60_000, polling: 50 });
    hydrated.push(Math.round((await interactive.jsonValue()) as number));

    const form = page.getByTestId("order-form");
    const picker = form.getByRole("combobox", { name: "Product" });
    const typing = await page.evaluate(() => Math.round(performance.now()));
    await picker.fill("Oak chair");
    await form.getByRole("option").first().click({ timeout: 60_000 });
    const shown = await page.waitForFunction(
      () => (document.querySelector('[data-testid="preview-total"]')?.textContent ? performance.now() : null),
      null,
      { timeout: 60_000, polling: "raf" },
    );
    reacted.push(Math.round((await shown.jsonValue()) as number));
    arrivals.push(await page.evaluate(() => {
      const end = (entry?: PerformanceEntry) => Math.round((entry as PerformanceResourceTiming | undefined)?.responseEnd ?? -1);
      const resources = performance.getEntriesByType("resource") as PerformanceResourceTiming[];
      const named = (suffix: string) => resources.find((r) => new URL(r.name).pathname.endsWith(suffix));
      const search = resources.filter((r) => r.name.includes("/api/products_page")).at(-1);
      return `long tasks ${JSON.stringify((window as any).__longTasks)}, ` +
        `html ${end(performance.getEntriesByType("navigation")[0])}, css ${end(named(".css"))}, ` +
        `js ${end(named(".js"))}, wasm ${end(named(".wasm"))}, ` +
        `search ${Math.round(search?.startTime ?? -1)}-${end(search)} ms`;
    }) + `, typing from ${typing} ms`);
    await context.close();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(
    `throttled phone: hydrated after ${hydrated.join(", ")} ms (median ${median(hydrated)}); ` +
      `a chosen product's price shown after ${reacted.join(", ")} ms (median ${median(reacted)}); ` +
      `arrived: ${arrivals.join("; ")}`,
  );
  test.info().annotations.push({ type: "mobile_reacts_ms", description: `median ${median(reacted)} of ${reacted.join(", ")}` });
  expect(median(reacted)).toBeLessThanOrEqual(mobileLimitMs);
});
