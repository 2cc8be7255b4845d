import { test, expect, Browser, Page } from "@playwright/test";
import { PrivateApp } from "../app";
import { addProduct, apiAddProduct, apiPlaceOrder, openShop, placeOrder, unique } from "./helpers";

/// Collects every Content-Security-Policy violation of the pages `page` opens.
async function watchPolicy(page: Page): Promise<() => Promise<string[]>> {
  await page.addInitScript(() => {
    (window as any).__violations = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      (window as any).__violations.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  return () => page.evaluate(() => (window as any).__violations as string[]);
}

test("every view runs under its Content-Security-Policy without a violation", async ({ page }) => {
  const violations = await watchPolicy(page);
  const productId = await apiAddProduct(page, unique("Policy stool"), "3.10", 4);
  const orderId = (await apiPlaceOrder(page, productId, 1)).id;
  for (const path of ["/", `/order/${orderId}`, "/dead-letters"]) {
    const answer = await page.goto(path);
    expect(answer!.headers()["content-security-policy"]).toContain("'nonce-");
    await expect(page.getByTestId("live-indicator")).toHaveText("live");
    expect(await violations(), path).toEqual([]);
  }
  // Swagger UI, under a policy of its own, draws the API.
  await page.goto("/docs/");
  await expect(page.locator(".swagger-ui .info .title")).toContainText("Stockflow");
  expect(await violations(), "/docs/").toEqual([]);
});

test("a search too short to be useful says so", async ({ page }) => {
  await page.goto("/?q=e");
  await expect(page.getByTestId("orders-panel").getByRole("alert")).toHaveText("search: type at least 2 letters of a word");
});

// Apps of their own, with tight limits.
let tight: PrivateApp;
test.beforeAll(async () => {
  test.setTimeout(120_000);
  tight = await PrivateApp.start({
    env: { FEED_MAX_PER_CLIENT: "1", ORDER_RATE_PER_CLIENT: "1", ORDER_BURST_PER_CLIENT: "2" },
  });
});
test.afterAll(async () => tight?.stop());

async function tightPage(browser: Browser) {
  const context = await browser.newContext({ baseURL: tight.baseURL });
  return context.newPage();
}

test("a page refused a live feed says it is connecting, and joins once a place is free", async ({ browser }) => {
  const first = await tightPage(browser);
  await first.goto("/");
  await expect(first.getByTestId("live-indicator")).toHaveText("live");
  // One live feed per address: the second page is refused (429) and keeps asking.
  const second = await tightPage(browser);
  await second.goto("/");
  await expect(second.getByTestId("live-indicator")).toHaveText("connecting…");
  await second.waitForTimeout(1000);
  await expect(second.getByTestId("live-indicator")).toHaveText("connecting…");
  await first.context().close();
  await expect(second.getByTestId("live-indicator")).toHaveText("live", { timeout: 20_000 });
  await second.context().close();
});

test("a client placing orders faster than the limit is told how long to wait", async ({ browser }) => {
  const page = await tightPage(browser);
  await openShop(page, { signIn: true, token: tight.adminToken });
  const name = unique("Limited lamp");
  await addProduct(page, name, "5", "50");
  for (let n = 0; n < 2; n++) {
    await placeOrder(page, name, String(n + 1));
    await page.getByRole("button", { name: "Place order" }).click();
    await expect(page.getByTestId("order-placed")).toBeVisible();
  }
  await placeOrder(page, name, "3");
  await page.getByRole("button", { name: "Place order" }).click();
  await expect(page.getByTestId("order-error")).toContainText(/Too many orders from this address\. Try again in \d+ s\./);
  await page.context().close();
});
