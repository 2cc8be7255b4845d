import { test, expect } from "@playwright/test";
import { addProduct, apiAddProduct, apiPlaceOrder, deleteProduct, openShop, placeOrder, submitProduct, unique, watchStatus } from "./helpers";

test("a shopper adds a product, orders it and watches the order get fulfilled live", async ({ page }) => {
  await openShop(page);
  const name = unique("Oak chair");
  const product = await addProduct(page, name, "19.99", "5");
  await expect(product.locator(".stock")).toHaveText("5");

  await page.evaluate(() => ((window as any).__noReload = true));
  await placeOrder(page, name, "2");
  // The preview prices the whole order with the 20% fee, before submitting.
  await expect(page.getByTestId("preview-fee")).toHaveText("8.00");
  await expect(page.getByTestId("preview-total")).toHaveText("47.98");
  await page.getByRole("button", { name: "Place order" }).click();
  await expect(page.getByTestId("order-placed")).toContainText("47.98");

  const row = page.getByTestId("orders").locator("tr", { hasText: name }).first();
  const badge = row.getByTestId("order-status");
  await expect(badge).toHaveText("pending");
  await watchStatus(badge);
  await expect(badge).toHaveText("fulfilled");
  const seen: string[] = await page.evaluate(() => (window as any).__statuses);
  expect(seen).toEqual(["pending", "completed", "fulfilled"]);

  // Stock moved live too, and the page was never reloaded.
  await expect(product.locator(".stock")).toHaveText("3");
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
});

test("an order for more than the stock is refunded", async ({ page }) => {
  await openShop(page);
  const name = unique("Rare lamp");
  const product = await addProduct(page, name, "7.50", "1");
  await page.evaluate(() => ((window as any).__noReload = true));
  await placeOrder(page, name, "3");
  await expect(page.getByText("More than in stock")).toBeVisible();
  await page.getByRole("button", { name: "Place order" }).click();

  const row = page.getByTestId("orders").locator("tr", { hasText: name }).first();
  await expect(row.getByTestId("order-status")).toHaveText("refunded");
  // Why, live, without a reload.
  await expect(row.getByTestId("refund-reason")).toHaveText("insufficient stock");
  await expect(product.locator(".stock")).toHaveText("1");
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
});

test("invalid input is explained, not accepted", async ({ page }) => {
  await openShop(page);
  await submitProduct(page, unique("Bad price"), "12.345", "3");
  await expect(page.getByTestId("add-product-error")).toHaveText("price: must have at most 2 decimal places");
});

test("a product can be deleted", async ({ page }) => {
  await openShop(page);
  const name = unique("Old stool");
  const row = await addProduct(page, name, "3", "2");
  // Delete asks first; Cancel keeps the product.
  await row.getByRole("button", { name: `Delete ${name}`, exact: true }).click();
  await row.getByRole("button", { name: `Cancel deleting ${name}` }).click();
  await expect(row.getByRole("button", { name: `Delete ${name}`, exact: true })).toBeVisible();
  await deleteProduct(row, name);
  await expect(page.getByTestId("products").locator("tr", { hasText: name })).toHaveCount(0);
  // Gone for the REST API too.
  const products = await (await page.request.get("/products")).json();
  expect(products.some((p: { name: string }) => p.name === name)).toBe(false);
});

test("the shop page asks for nothing that is missing: no answer is 400 or more", async ({ page }) => {
  const failed: string[] = [];
  page.on("response", (response) => {
    if (response.status() >= 400) failed.push(`${response.status()} ${response.url()}`);
  });
  await openShop(page);
  await page.reload();
  await expect(page.getByTestId("live-indicator")).toHaveText("live");
  // The icon the page names is there.
  const icon = await page.locator('link[rel="icon"]').getAttribute("href");
  const answer = await page.request.get(icon!);
  expect(answer.status()).toBe(200);
  expect(answer.headers()["content-type"]).toContain("image/svg+xml");
  expect(failed).toEqual([]);
});

// A page's live feed starts from when the server rendered it: what changed
// between the render and the page coming to life is replayed to it, so the
// page never fetches its lists again once hydrated (four round trips, right
// when a phone's user starts typing). The WASM is held back while an order
// is placed, so the order surely falls between the two.
test("a change between the page's render and its live feed shows, with no list fetched again", async ({ page }) => {
  const name = unique("Render-race lamp");
  const productId = await apiAddProduct(page, name, "3.00", 5);
  // Older than the 250 ms the server replays from before a render (for
  // clocks), so its creation is not replayed (which would fetch the products again).
  await page.waitForTimeout(400);
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.route(/\/pkg\/[^/]*\.wasm$/, async (route) => {
    await held;
    await route.continue();
  });
  const lists: string[] = [];
  page.on("request", (request) => {
    const path = new URL(request.url()).pathname;
    if (/^\/api\/(orders_page|products_page|status_counts)/.test(path)) lists.push(path);
  });
  await page.goto("/", { waitUntil: "commit" });
  const product = page.getByTestId("products").locator("tr, li", { hasText: name }).first();
  await expect(product).toBeVisible();
  await apiPlaceOrder(page, productId, 1);
  release();
  await expect(page.getByTestId("live-indicator")).toHaveText("live");
  const row = page.getByTestId("orders").locator("tr", { hasText: name }).first();
  await expect(row.getByTestId("order-status")).toHaveText("fulfilled");
  await expect(product.locator(".stock")).toHaveText("4");
  expect(lists, "lists fetched again after hydration").toEqual([]);
});
