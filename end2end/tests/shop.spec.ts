import { test, expect } from "@playwright/test";
import { addProduct, deleteProduct, openShop, placeOrder, submitProduct, unique, watchStatus } from "./helpers";

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
