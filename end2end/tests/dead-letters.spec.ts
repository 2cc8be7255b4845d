import { test, expect, Page } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { addProduct, openShop, placeOrder, signIn, unique } from "./helpers";
import { redisURL, writePoison } from "./redis";

test.skip(!redisURL, "REDIS_URL is not set: no Redis to write a poison entry to");

async function headerCount(page: Page): Promise<number> {
  const text = await page.getByTestId("dead-letter-count").textContent();
  return Number(text);
}

test("an admin sees dead letters, retries one and discards one after confirming; the header count follows", async ({ page }) => {
  await page.goto("/dead-letters");
  await expect(page.getByTestId("live-indicator")).toHaveText("live");
  if (process.env.ADMIN_TOKEN) {
    // Signed out: the sign-in prompt instead of the letters, and no count.
    await expect(page.getByTestId("dead-letters-sign-in")).toBeVisible();
    await expect(page.getByTestId("dead-letters")).toHaveCount(0);
    await expect(page.getByTestId("dead-letter-count")).toHaveCount(0);
    await signIn(page, process.env.ADMIN_TOKEN);
  }
  const table = page.getByTestId("dead-letters");
  await expect(table).toBeVisible();
  await expect(page.getByTestId("dead-letter-count")).toBeVisible();
  const before = await headerCount(page);

  const tag = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
  const [retried, discarded] = [`not-an-id-${tag}-r`, `not-an-id-${tag}-d`];
  writePoison(retried);
  writePoison(discarded);
  const rowOf = (orderId: string) => table.locator("tr", { has: page.locator(`code:text-is("${orderId}")`) });
  // Nothing tells the browser about an entry without an order: it shows on the next look.
  await expect(async () => {
    await page.reload();
    await expect(rowOf(retried)).toHaveCount(1, { timeout: 1000 });
    await expect(rowOf(discarded)).toHaveCount(1, { timeout: 1000 });
  }).toPass({ timeout: 15_000 });
  await expect(page.getByTestId("dead-letter-count")).toHaveText(String(before + 2));
  const row = rowOf(retried);
  await expect(row).toContainText("order-completed");
  await expect(row.locator("td").nth(3)).toHaveText(/^\d+$/);
  await expect(row.locator("time")).toHaveText(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}/);
  // The order is linked to its page.
  await expect(row.getByRole("link", { name: retried })).toHaveAttribute("href", `/order/${retried}`);
  // Newest first.
  const order = await table.locator("tbody tr").evaluateAll((rows) => rows.map((r) => r.textContent ?? ""));
  const [d, r] = [order.findIndex((t) => t.includes(discarded)), order.findIndex((t) => t.includes(retried))];
  expect(d).toBeLessThan(r);

  // Retry: the entry goes back on its stream, is still bad, and comes back as
  // a new dead letter; the count stays.
  const firstId = await row.getAttribute("data-dead-letter-id");
  await row.getByRole("button", { name: `Retry dead letter of order ${retried}` }).click();
  await expect(rowOf(retried)).toHaveCount(1);
  await expect(rowOf(retried)).not.toHaveAttribute("data-dead-letter-id", firstId!);
  await expect(page.getByTestId("dead-letter-count")).toHaveText(String(before + 2));

  // Discard asks first; Cancel keeps it.
  const other = rowOf(discarded);
  await other.getByRole("button", { name: `Discard dead letter of order ${discarded}` }).click();
  await other.getByRole("button", { name: `Cancel discarding dead letter of order ${discarded}` }).click();
  await expect(other.getByRole("button", { name: `Discard dead letter of order ${discarded}` })).toBeVisible();
  await other.getByRole("button", { name: `Discard dead letter of order ${discarded}` }).click();
  await other.getByRole("button", { name: `Really discard dead letter of order ${discarded}?` }).click();
  await expect(rowOf(discarded)).toHaveCount(0);
  await expect(page.getByTestId("dead-letter-count")).toHaveText(String(before + 1));

  // Gone for good: a reload agrees.
  await page.reload();
  await expect(rowOf(retried)).toHaveCount(1);
  await expect(rowOf(discarded)).toHaveCount(0);
  await expect(page.getByTestId("dead-letter-count")).toHaveText(String(before + 1));
});

test("dead letters come a page at a time, with Load more", async ({ page }) => {
  await page.goto("/dead-letters");
  await expect(page.getByTestId("live-indicator")).toHaveText("live");
  if (process.env.ADMIN_TOKEN) await signIn(page, process.env.ADMIN_TOKEN);
  const table = page.getByTestId("dead-letters");
  await expect(table).toBeVisible();
  const tag = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
  // More than a page (20) of them.
  for (let i = 0; i < 22; i++) writePoison(`not-an-id-${tag}-p${i}`);
  const ours = table.locator("tbody tr", { hasText: `not-an-id-${tag}-p` });
  await expect(async () => {
    await page.reload();
    await expect(ours).toHaveCount(20, { timeout: 1000 });
  }).toPass({ timeout: 15_000 });
  await page.getByRole("button", { name: "Load more" }).click();
  await expect(ours).toHaveCount(22);
  // Clean up: discard them (two clicks each), so other runs see few.
  for (let i = 0; i < 22; i++) {
    const row = table.locator("tr", { has: page.locator(`code:text-is("not-an-id-${tag}-p${i}")`) });
    await row.getByRole("button", { name: /^Discard/ }).click();
    await row.getByRole("button", { name: /^Really discard/ }).click();
    await expect(row).toHaveCount(0);
  }
});

test("an order whose processing failed for good is refunded, and the header count follows live", async ({ page }) => {
  await openShop(page);
  const count = page.getByTestId("dead-letter-count");
  await expect(count).toBeVisible();
  const before = Number(await count.textContent());
  const name = unique("Cedar bench");
  await addProduct(page, name, "40", "5");
  await page.evaluate(() => ((window as any).__noReload = true));
  await placeOrder(page, name, "1");
  await page.getByRole("button", { name: "Place order" }).click();
  const link = page.getByTestId("order-placed").getByRole("link");
  const orderId = (await link.getAttribute("href"))!.replace("/order/", "");
  // While it waits for payment, a broken entry about it reaches the warehouse
  // (in the order's own partition): it is dead-lettered and the order refunded.
  const key = execFileSync("redis-cli", ["-u", redisURL!, "--scan", "--pattern", `stockflow:*:order:${orderId}`])
    .toString()
    .trim();
  expect(key).toMatch(/:order:/);
  execFileSync("redis-cli", [
    "-u", redisURL!, "XADD", key.replace(/order:[^:]+$/, "order-completed"), "*",
    "order_id", orderId, "product_id", "not-an-id",
  ]);
  const row = page.getByTestId("orders").locator(`tr[data-order-id="${orderId}"]`);
  await expect(row.getByTestId("order-status")).toHaveText("refunded");
  await expect(row.getByTestId("refund-reason")).toContainText("processing failed");
  await expect(count).toHaveText(String(before + 1));
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);

  // Its page says why, and leads to the dead letters, where its letter is.
  await row.getByRole("link", { name: `Order ${orderId}` }).click();
  await expect(page.getByTestId("order-refund-reason")).toContainText("processing failed");
  await expect(page.getByTestId("timeline").locator("li").last()).toHaveAttribute("data-step", "refunded");
  await page.getByTestId("order-refund-reason").getByRole("link", { name: "(see dead letters)" }).click();
  await expect(page.getByTestId("dead-letters").locator("tr", { hasText: orderId })).toHaveCount(1);
});
