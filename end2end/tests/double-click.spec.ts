import { test, expect } from "@playwright/test";
import { addProduct, openShop, placeOrder, unique } from "./helpers";

test("a double click on Place order places exactly one order", async ({ page }) => {
  await openShop(page);
  const name = unique("Birch stool");
  const product = await addProduct(page, name, "9", "10");
  const productId = (await product.getAttribute("data-product-id"))!;
  const keys: string[] = [];
  page.on("request", (request) => {
    if (new URL(request.url()).pathname === "/api/place_order") {
      keys.push(new URLSearchParams(request.postData() ?? "").get("idempotency_key") ?? "");
    }
  });

  await placeOrder(page, name, "1");
  await page.getByRole("button", { name: "Place order" }).dblclick();
  await expect(page.getByTestId("order-placed")).toContainText("10.80");
  // Every request of that attempt carried the same key.
  expect(keys.length).toBeGreaterThan(0);
  expect(new Set(keys).size).toBe(1);
  expect(keys[0]).not.toBe("");

  // Exactly one new order row for that product, in the page and over REST.
  await page.waitForTimeout(1500);
  await expect(page.getByTestId("orders").locator("tr", { hasText: name })).toHaveCount(1);
  const orders: { product_id: string }[] = await (await page.request.get(`/orders?limit=1000`)).json();
  expect(orders.filter((o) => o.product_id === productId)).toHaveLength(1);

  // A retried request with that key gets the same order, not a second one.
  const retried = await page.request.post("/api/place_order", {
    form: { product_id: productId, quantity: "1", idempotency_key: keys[0] },
  });
  expect(retried.ok()).toBe(true);
  const again: { product_id: string }[] = await (await page.request.get(`/orders?limit=1000`)).json();
  expect(again.filter((o) => o.product_id === productId)).toHaveLength(1);

  // A person's double click: the second click comes after the first order
  // was answered, and is still the same attempt.
  await page.waitForTimeout(1500);
  const button = page.getByRole("button", { name: "Place order" });
  const sentFirst = keys.length;
  await button.click();
  await expect.poll(() => keys.length).toBe(sentFirst + 1);
  await expect(page.getByTestId("order-placed")).toContainText("10.80");
  await page.waitForTimeout(150);
  await button.click();
  await expect.poll(() => keys.length).toBe(sentFirst + 2);
  expect(keys[sentFirst + 1]).toBe(keys[sentFirst]);
  expect(keys[sentFirst]).not.toBe(keys[0]);
  await page.waitForTimeout(1500);
  const twice: { product_id: string }[] = await (await page.request.get(`/orders?limit=1000`)).json();
  expect(twice.filter((o) => o.product_id === productId)).toHaveLength(2);

  // The next attempt is a new order, with a new key, even when it is sent
  // twice in the same instant (two submits before the page can react).
  const sentBefore = keys.length;
  await page.getByTestId("order-form").evaluate((form: HTMLFormElement) => {
    form.requestSubmit();
    form.requestSubmit();
  });
  await expect.poll(() => keys.length).toBe(sentBefore + 2);
  expect(keys[sentBefore]).toBe(keys[sentBefore + 1]);
  expect(keys[sentBefore]).not.toBe(keys[0]);
  await page.waitForTimeout(1500);
  await expect(page.getByTestId("orders").locator("tr", { hasText: name })).toHaveCount(3);
  const after: { product_id: string }[] = await (await page.request.get(`/orders?limit=1000`)).json();
  expect(after.filter((o) => o.product_id === productId)).toHaveLength(3);
});
