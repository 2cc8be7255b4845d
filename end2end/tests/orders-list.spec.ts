import { test, expect, Page } from "@playwright/test";
import { addProduct, apiAddProduct, apiPlaceOrder, openShop, unique } from "./helpers";

const orders = (page: Page) => page.getByTestId("orders");
const rows = (page: Page) => orders(page).locator("tbody tr");
const count = (page: Page, filter: string) => page.getByTestId(`filter-${filter}`).locator(".count");
const counted = async (page: Page, filter: string) => Number((await count(page, filter).textContent())!.replace(/,/g, ""));

/// Records the server functions the page calls from now on.
function watchCalls(page: Page): string[] {
  const calls: string[] = [];
  page.on("request", (request) => {
    const path = new URL(request.url()).pathname;
    if (path.startsWith("/api/") && path !== "/api/events") calls.push(path);
  });
  return calls;
}

test("an operator searches orders by product name, loads more, filters by status and finds orders by their id or its start", async ({ page }) => {
  await openShop(page);
  const name = unique("Pine crate");
  const product = await apiAddProduct(page, name, "4.00", 1000);
  // 55 orders from elsewhere: more than a page (50).
  const placed: string[] = [];
  for (let i = 0; i < 55; i++) placed.push((await apiPlaceOrder(page, product, 1)).id);

  const search = page.getByRole("search", { name: "Orders" });
  await search.getByLabel("Find orders").fill(name);
  await search.getByRole("button", { name: "Search orders" }).click();
  await expect(page).toHaveURL(/[?&]q=Pine/);
  await expect(rows(page)).toHaveCount(50);
  await expect(rows(page).first()).toHaveAttribute("data-order-id", placed[54]);
  await page.getByRole("button", { name: "Load more orders" }).click();
  await expect(rows(page)).toHaveCount(55);
  await expect(rows(page).last()).toHaveAttribute("data-order-id", placed[0]);
  await expect(page.getByRole("button", { name: "Load more orders" })).toHaveCount(0);

  // By status, keeping the search: once every one is fulfilled, none is pending.
  await expect(rows(page).getByTestId("order-status").filter({ hasText: "fulfilled" })).toHaveCount(55, { timeout: 30_000 });
  await page.getByTestId("filter-pending").click();
  await expect(page.getByTestId("filter-pending")).toHaveAttribute("aria-current", "true");
  await expect(page.getByTestId("no-orders")).toHaveText("No orders match.");
  await page.getByTestId("filter-fulfilled").click();
  await expect(rows(page)).toHaveCount(50);
  await expect(search.getByLabel("Find orders")).toHaveValue(name);

  // One order by its full id, as its page shows it.
  await search.getByLabel("Find orders").fill(placed[7].toLowerCase());
  await search.getByRole("button", { name: "Search orders" }).click();
  await expect(rows(page)).toHaveCount(1);
  await expect(rows(page).first()).toHaveAttribute("data-order-id", placed[7]);
  await expect(rows(page).first()).toContainText(name);

  // The start of an id, 8 characters or more in either case: the orders whose ids start so.
  const start = placed[7].slice(0, 11);
  await search.getByLabel("Find orders").fill(start.toLowerCase());
  await search.getByRole("button", { name: "Search orders" }).click();
  await expect(orders(page).locator(`tr[data-order-id="${placed[7]}"]`)).toHaveCount(1);
  const shown = await rows(page).evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-order-id") ?? ""));
  expect(shown.every((id) => id.startsWith(start)), shown.join(" ")).toBe(true);
  await search.getByLabel("Find orders").fill(placed[7].slice(0, 8));
  await search.getByRole("button", { name: "Search orders" }).click();
  await expect(page).toHaveURL(new RegExp(`[?&]q=${placed[7].slice(0, 8)}`));
  await expect(rows(page).first()).toHaveAttribute("data-order-id", new RegExp(`^${placed[7].slice(0, 8)}`));

  // Back to everything; the page was never reloaded.
  await page.evaluate(() => ((window as any).__noReload = true));
  await search.getByRole("link", { name: "Show every order" }).click();
  await page.getByTestId("filter-all").click();
  await expect(page).toHaveURL(/\/\??$/);
  await expect(rows(page)).toHaveCount(50);
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
});

test("counts follow the feed, and orders placed elsewhere join the list without fetching it again", async ({ page, browser }) => {
  await openShop(page);
  const name = unique("Ash ladder");
  await addProduct(page, name, "30", "1");
  const product = (await page.getByTestId("products").locator("tr", { hasText: name }).getAttribute("data-product-id"))!;
  const allBefore = await counted(page, "all");
  await page.evaluate(() => ((window as any).__noReload = true));
  const calls = watchCalls(page);

  // An order from elsewhere: it shows up on top, fetched by its id alone, and moves on live.
  const first = await apiPlaceOrder(page, product, 1);
  const row = orders(page).locator(`tr[data-order-id="${first.id}"]`);
  await expect(rows(page).first()).toHaveAttribute("data-order-id", first.id);
  await expect(row.getByTestId("order-status")).toHaveText("fulfilled");
  await expect.poll(() => counted(page, "all")).toBeGreaterThanOrEqual(allBefore + 1);

  // In the "refunded" view, the order that runs out of stock joins it when
  // it is refunded; one that is fulfilled never does.
  await page.getByTestId("filter-refunded").click();
  await expect(page.getByTestId("filter-refunded")).toHaveAttribute("aria-current", "true");
  const refundedBefore = await counted(page, "refunded");
  const short = await apiPlaceOrder(page, product, 1);
  const refunded = orders(page).locator(`tr[data-order-id="${short.id}"]`);
  await expect(refunded.getByTestId("order-status")).toHaveText("refunded");
  await expect(refunded.getByTestId("refund-reason")).toHaveText("insufficient stock");
  await expect(rows(page).first()).toHaveAttribute("data-order-id", short.id);
  await expect.poll(() => counted(page, "refunded")).toBeGreaterThanOrEqual(refundedBefore + 1);
  await expect(orders(page).locator(`tr[data-order-id="${first.id}"]`)).toHaveCount(0);

  // The list itself was fetched only for the filter the person chose; the
  // feed's orders came one by one.
  expect(calls.filter((c) => c === "/api/orders_page")).toHaveLength(1);
  expect(calls).toContain("/api/orders_with_ids");
  expect(calls).not.toContain("/api/list_products");
  expect(calls).not.toContain("/api/status_counts");
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);

  // At rest, the counts kept live agree with a page loaded afresh.
  const fresh = await browser.newPage();
  await fresh.goto("/");
  await expect(fresh.getByTestId("live-indicator")).toHaveText("live");
  await fresh.waitForTimeout(1500);
  for (const filter of ["all", "pending", "completed", "fulfilled", "refunded"]) {
    await expect.poll(async () => (await counted(page, filter)) - (await counted(fresh, filter))).toBe(0);
  }
  await fresh.close();
});

test("on a busy shop the list stops growing after 100 new orders and offers the newer ones", async ({ page }) => {
  await openShop(page);
  const product = await apiAddProduct(page, unique("Busy crate"), "1", 1000);
  await page.evaluate(() => ((window as any).__noReload = true));
  const calls = watchCalls(page);
  const placed: string[] = [];
  for (let i = 0; i < 110; i++) placed.push((await apiPlaceOrder(page, product, 1)).id);

  // The first hundred join the list, newest on top; the last ten wait.
  const newer = page.getByTestId("show-newer");
  await expect(newer).toHaveText("Show 10 newer orders");
  await expect(orders(page).locator(`tr[data-order-id="${placed[99]}"]`)).toHaveCount(1);
  await expect(rows(page).first()).toHaveAttribute("data-order-id", placed[99]);
  await expect(orders(page).locator(`tr[data-order-id="${placed[100]}"]`)).toHaveCount(0);
  expect(calls).not.toContain("/api/orders_page");

  // Showing them reloads the first page, once: the newest orders on top.
  await newer.click();
  await expect(rows(page).first()).toHaveAttribute("data-order-id", placed[109]);
  await expect(rows(page)).toHaveCount(50);
  await expect(newer).toHaveCount(0);
  expect(calls.filter((c) => c === "/api/orders_page")).toHaveLength(1);
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
});
