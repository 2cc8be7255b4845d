import { test, expect } from "@playwright/test";

test("the API docs render in the browser, offline", async ({ page }) => {
  const origin = new URL(process.env.BASE_URL ?? "http://127.0.0.1:3000").origin;
  const outside: string[] = [];
  page.on("request", (request) => {
    if (new URL(request.url()).origin !== origin) outside.push(request.url());
  });
  await page.goto("/docs");
  await expect(page.getByRole("heading", { name: "Stockflow API" })).toBeVisible();
  const placeOrder = page.locator("section.operation", { has: page.locator("code", { hasText: /^\/orders$/ }) }).filter({ hasText: "POST" });
  await expect(placeOrder).toContainText("Idempotency-Key");
  await expect(placeOrder).toContainText("422");
  await placeOrder.getByRole("link", { name: "Order", exact: true }).first().click();
  await expect(page.locator("#schema-Order")).toBeInViewport();
  expect(outside).toEqual([]);
});
