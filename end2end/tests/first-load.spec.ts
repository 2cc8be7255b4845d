import { test, expect, Browser } from "@playwright/test";
import { apiAddProduct, apiPlaceOrder, unique } from "./helpers";

// What a first visit downloads of the front end (WASM, its JS, the CSS), per
// route, as Chromium counts it: the bytes that came over the wire (headers
// and compressed bodies, from each request's transfer sizes), once with
// brotli and once with gzip only. Printed by scripts/test. The budget (270 KB
// brotli, 370 KB gzip) is not met yet (see README.md, "The front end"): it
// is enforced only when FIRST_LOAD_ENFORCE=1.
const BUDGET = { br: 270 * 1024, gzip: 370 * 1024 };
const enforce = process.env.FIRST_LOAD_ENFORCE === "1";

/// Bytes of the bundle a fresh browser downloads to open `path`, offering `encoding`.
async function firstLoad(browser: Browser, baseURL: string, path: string, encoding: string): Promise<number> {
  const context = await browser.newContext({ baseURL, extraHTTPHeaders: { "Accept-Encoding": encoding } });
  const page = await context.newPage();
  const requests: Promise<number>[] = [];
  page.on("requestfinished", (request) => {
    if (!new URL(request.url()).pathname.startsWith("/pkg/")) return;
    requests.push(request.sizes().then((s) => s.responseHeadersSize + s.responseBodySize));
  });
  await page.goto(path);
  await expect(page.getByTestId("live-indicator")).toHaveText("live");
  await page.waitForLoadState("networkidle");
  const sizes = await Promise.all(requests);
  await context.close();
  expect(sizes.length, `${path}: the WASM, its JS and the CSS`).toBeGreaterThanOrEqual(3);
  return sizes.reduce((a, b) => a + b, 0);
}

test("the first load of every route, measured against the budget", async ({ browser, baseURL, page }) => {
  const productId = await apiAddProduct(page, unique("First-load stool"), "4.20", 3);
  const orderId = (await apiPlaceOrder(page, productId, 1)).id;
  const lines: string[] = [];
  const over: string[] = [];
  for (const path of ["/", `/order/${orderId}`, "/dead-letters"]) {
    const br = await firstLoad(browser, baseURL!, path, "br, gzip");
    const gzip = await firstLoad(browser, baseURL!, path, "gzip");
    const route = path.startsWith("/order/") ? "/order/{id}" : path;
    lines.push(`${route.padEnd(14)} brotli ${(br / 1024).toFixed(1)} KB, gzip ${(gzip / 1024).toFixed(1)} KB`);
    if (br > BUDGET.br || gzip > BUDGET.gzip) over.push(route);
  }
  console.log(`first load (WASM + JS + CSS as transferred; budget 270 KB brotli, 370 KB gzip):\n  ${lines.join("\n  ")}`);
  if (enforce) expect(over, "routes over the budget").toEqual([]);
});
