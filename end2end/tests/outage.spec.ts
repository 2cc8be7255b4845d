import { test, expect, Browser } from "@playwright/test";
import { PrivateApp } from "../app";
import { addProduct, openShop, placeOrder, unique } from "./helpers";

// An app of its own, whose Redis the story stops and starts again: the
// other stories' app never sees the outage.
let app: PrivateApp;
test.beforeAll(async () => {
  test.setTimeout(120_000);
  app = await PrivateApp.start();
});
test.afterAll(async () => app?.stop());

async function shopPage(browser: Browser) {
  const context = await browser.newContext({ baseURL: app.baseURL });
  return context.newPage();
}

const UNAVAILABLE = "The shop is unavailable right now";

test("when Redis goes away the page says so, and when it is back the page catches up by itself", async ({ browser }) => {
  const page = await shopPage(browser);
  await openShop(page, { signIn: true, token: app.adminToken });
  const name = unique("Outage lamp");
  const product = await addProduct(page, name, "15", "5");
  await expect(product.locator(".stock")).toHaveText("5");

  // Redis stops: an order cannot be placed, and the page says why.
  await placeOrder(page, name, "1");
  await app.stopRedis();
  await page.evaluate(() => ((window as any).__noReload = true));
  await page.getByRole("button", { name: "Place order" }).click();
  await expect(page.getByTestId("order-error")).toContainText(UNAVAILABLE);
  await expect(page.getByTestId("outage")).toContainText(UNAVAILABLE);

  // It is back: the notices go away without a reload, and ordering works again.
  await app.startRedis();
  await expect(page.getByText(UNAVAILABLE)).toHaveCount(0, { timeout: 30_000 });
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
  await page.getByRole("button", { name: "Place order" }).click();
  const placed = page.getByTestId("order-placed");
  await expect(placed).toBeVisible();
  const orderId = (await placed.getByRole("link").getAttribute("href"))!.replace("/order/", "");
  await expect(page.locator(`tr[data-order-id="${orderId}"]`).getByTestId("order-status")).toHaveText("fulfilled", { timeout: 30_000 });
  await expect(product.locator(".stock")).toHaveText("4");
  await page.context().close();
});

test("a page loaded during an outage shows its lists and stock once Redis is back, reloading them once", async ({ browser }) => {
  const page = await shopPage(browser);
  await openShop(page, { signIn: true, token: app.adminToken });
  const name = unique("Outage stool");
  await addProduct(page, name, "9", "7");

  await app.stopRedis();
  await page.reload();
  // Rendered on the server without its data: the panels say why.
  await expect(page.getByText(UNAVAILABLE).first()).toBeVisible();
  await expect(page.getByTestId("products")).toHaveCount(0);
  await expect(page.getByTestId("orders")).toHaveCount(0);
  await expect(page.getByTestId("live-indicator")).toHaveText("live");
  await page.evaluate(() => ((window as any).__noReload = true));
  // The lists fetched from the moment Redis starts again.
  const reloads: string[] = [];
  let back = false;
  page.on("request", (request) => {
    const path = new URL(request.url()).pathname;
    const lists = ["/api/products_page", "/api/orders_page", "/api/status_counts"];
    if (back && lists.includes(path)) reloads.push(path);
  });

  back = true;
  await app.startRedis();
  const row = page.getByTestId("products").locator("tr", { hasText: name });
  await expect(row.locator(".stock")).toHaveText("7", { timeout: 30_000 });
  await expect(page.getByTestId("orders").or(page.getByTestId("no-orders"))).toBeVisible();
  await expect(page.getByText(UNAVAILABLE)).toHaveCount(0);
  // Each list once, not over and over.
  await page.waitForTimeout(2500);
  expect(reloads.sort()).toEqual(["/api/orders_page", "/api/products_page", "/api/status_counts"]);
  // The order form finds it with its stock as it is now.
  await placeOrder(page, name, "1");
  await expect(page.getByTestId("chosen-stock")).toHaveText("7 in stock");
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
  await page.context().close();
});
