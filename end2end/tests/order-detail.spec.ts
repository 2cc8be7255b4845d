import { test, expect } from "@playwright/test";
import { addProduct, openShop, placeOrder, unique } from "./helpers";

const READABLE_TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} UTC/;

test("a shopper opens an order from the list and watches its timeline grow live, and a reload shows the same", async ({ page }) => {
  await openShop(page);
  const name = unique("Pine shelf");
  await addProduct(page, name, "12.50", "5");
  await placeOrder(page, name, "2");
  await page.getByRole("button", { name: "Place order" }).click();
  await expect(page.getByTestId("order-placed")).toContainText("30.00");

  // Every order id in the list links to its page.
  const row = page.getByTestId("orders").locator("tr", { hasText: name }).first();
  const orderId = (await row.getAttribute("data-order-id"))!;
  await page.evaluate(() => ((window as any).__noReload = true));
  await row.getByRole("link", { name: `Order ${orderId}` }).click();
  await expect(page).toHaveURL(new RegExp(`/order/${orderId}$`));

  const detail = page.getByTestId("order-detail");
  await expect(detail.getByTestId("order-product")).toHaveText(name);
  await expect(detail.getByTestId("order-quantity")).toHaveText("2");
  await expect(detail.getByTestId("order-price")).toHaveText("12.50");
  await expect(detail.getByTestId("order-subtotal")).toHaveText("25.00");
  await expect(detail.getByTestId("order-fee")).toHaveText("5.00");
  await expect(detail.getByTestId("order-total")).toHaveText("30.00");

  // The timeline grows live (payment takes a second): pending, then completed, then fulfilled.
  const steps = detail.getByTestId("timeline").locator("li");
  await expect(steps.first()).toHaveAttribute("data-step", "pending");
  await detail.getByTestId("timeline").evaluate((el) => {
    const seen: number[] = [el.querySelectorAll("li").length];
    (window as any).__stepCounts = seen;
    new MutationObserver(() => {
      const n = el.querySelectorAll("li").length;
      if (seen[seen.length - 1] !== n) seen.push(n);
    }).observe(el, { childList: true, subtree: true });
  });
  await expect(detail.getByTestId("order-status")).toHaveText("fulfilled");
  await expect(steps).toHaveCount(3);
  const shown = await steps.evaluateAll((items) => items.map((li) => li.getAttribute("data-step")));
  expect(shown).toEqual(["pending", "completed", "fulfilled"]);
  const counts: number[] = await page.evaluate(() => (window as any).__stepCounts);
  expect(counts[counts.length - 1]).toBe(3);
  expect(counts.length, `the timeline grew in place: ${counts}`).toBeGreaterThan(1);
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
  // Each step with a readable time.
  const times = await steps.locator("time").allTextContents();
  expect(times).toHaveLength(3);
  for (const time of times) expect(time).toMatch(READABLE_TIME);

  // A reload, or the link shared, opens the same view, rendered on the server.
  await page.reload();
  await expect(detail.getByTestId("order-status")).toHaveText("fulfilled");
  expect(await steps.evaluateAll((items) => items.map((li) => li.getAttribute("data-step")))).toEqual(shown);
  expect(await steps.locator("time").allTextContents()).toEqual(times);
  const html = await (await page.request.get(`/order/${orderId}`)).text();
  expect(html).toContain(name);
  expect(html).toContain('data-step="fulfilled"');
});

test("an unknown or malformed order id says there is no such order", async ({ page }) => {
  for (const id of ["01ARZ3NDEKTSV4RRFFQ69G5FAV", "not-an-id"]) {
    await page.goto(`/order/${id}`);
    await expect(page.getByRole("heading", { name: "No such order" })).toBeVisible();
    await expect(page.getByTestId("order-missing")).toContainText("No such order.");
  }
  // The REST API's /orders/{id} stays JSON.
  const answer = await page.request.get("/orders/not-an-id");
  expect(answer.status()).toBe(404);
  expect(answer.headers()["content-type"]).toContain("application/json");
});
