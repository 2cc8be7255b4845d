import { test, expect } from "@playwright/test";
import { addProduct, openShop, placeOrder, unique, watchStatus } from "./helpers";

// The same app backed by a Redis Cluster (3 masters, 3 replicas) that
// scripts/test starts beside the single-Redis one; its address comes in
// CLUSTER_BASE_URL. Without it (a run against one app) the story is skipped.
const clusterURL = process.env.CLUSTER_BASE_URL;
test.skip(!clusterURL, "CLUSTER_BASE_URL is not set: no cluster-backed app to test");
test.use({ baseURL: clusterURL });

test("on a Redis Cluster, an order goes pending → completed → fulfilled live", async ({ page }) => {
  await openShop(page);
  const name = unique("Cluster stool");
  const product = await addProduct(page, name, "12.50", "4");
  await page.evaluate(() => ((window as any).__noReload = true));
  await placeOrder(page, name, "1");
  await page.getByRole("button", { name: "Place order" }).click();

  const badge = page.getByTestId("orders").locator("tr", { hasText: name }).first().getByTestId("order-status");
  await expect(badge).toHaveText("pending");
  await watchStatus(badge);
  await expect(badge).toHaveText("fulfilled");
  expect(await page.evaluate(() => (window as any).__statuses)).toEqual(["pending", "completed", "fulfilled"]);
  await expect(product.locator(".stock")).toHaveText("3");
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
});
