import { test, expect, Page } from "@playwright/test";

/// Every request the page makes to another host (none is allowed: the docs work offline).
function watchOutside(page: Page): string[] {
  const origin = new URL(process.env.BASE_URL ?? "http://127.0.0.1:3000").origin;
  const outside: string[] = [];
  page.on("request", (request) => {
    const url = new URL(request.url());
    // data: and blob: URLs are the page's own content, not requests to a host.
    if (url.protocol !== "data:" && url.protocol !== "blob:" && url.origin !== origin) outside.push(request.url());
  });
  return outside;
}

test("the API docs render in the browser, offline, with Markdown rendered", async ({ page }) => {
  const outside = watchOutside(page);
  await page.goto("/docs");
  await expect(page.getByRole("heading", { name: /^Stockflow/ })).toBeVisible();
  const placeOrder = page.locator("#operations-store-place_order");
  await expect(placeOrder).toContainText("/orders");
  await placeOrder.locator(".opblock-summary-control").click();
  await expect(placeOrder).toContainText("Idempotency-Key");
  await expect(placeOrder).toContainText("422");
  // Descriptions are Markdown: `Next-Cursor` is code, not text between backticks.
  const listOrders = page.locator("#operations-store-list_orders");
  await listOrders.locator(".opblock-summary-control").click();
  await expect(listOrders.locator(".parameters code", { hasText: "Next-Cursor" })).toBeVisible();
  await expect(listOrders.locator(".opblock-description-wrapper code", { hasText: "Next-Cursor" })).toBeVisible();
  await expect(listOrders).not.toContainText("`Next-Cursor`");
  // Summaries are plain text: they hold no Markdown to show raw.
  await expect(page.locator(".opblock-summary-description", { hasText: "`" })).toHaveCount(0);
  expect(outside).toEqual([]);
});

test("a person sends a request from the docs and sees the answer", async ({ page }) => {
  const outside = watchOutside(page);
  await page.goto("/docs");
  const listProducts = page.locator("#operations-warehouse-list_products");
  await listProducts.locator(".opblock-summary-control").click();
  await listProducts.getByRole("button", { name: "Try it out" }).click();
  const sent = page.waitForResponse((response) => new URL(response.url()).pathname === "/products");
  await listProducts.getByRole("button", { name: "Execute" }).click();
  expect((await sent).status()).toBe(200);
  // Swagger UI shows the server's answer: its status and its body, a JSON array.
  const answer = listProducts.locator(".live-responses-table tr.response");
  await expect(answer.locator(".response-col_status")).toHaveText("200");
  await expect(answer.locator(".response-col_description pre").first()).toContainText("[");
  expect(outside).toEqual([]);
});
