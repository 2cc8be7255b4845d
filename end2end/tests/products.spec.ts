import { test, expect } from "@playwright/test";
import { addProduct, apiAddProduct, apiPlaceOrder, openShop, placeOrder, unique } from "./helpers";

test("the warehouse finds products by the words of their names, newest first, a page at a time", async ({ page }) => {
  await openShop(page);
  const family = unique("Maple shelf");
  // More than a page (20) of them, added elsewhere.
  for (let i = 0; i < 23; i++) await apiAddProduct(page, `${family} #${i}`, "12", 5);
  await page.reload();
  await expect(page.getByTestId("live-indicator")).toHaveText("live");

  const search = page.getByRole("search", { name: "Products" });
  await search.getByLabel("Find products").fill(family.toUpperCase());
  await search.getByRole("button", { name: "Search products" }).click();
  const table = page.getByTestId("products");
  const rows = table.locator("tbody tr");
  await expect(rows).toHaveCount(20);
  await expect(rows.first().locator(".name")).toHaveText(`${family} #22`);
  await expect(rows.last().locator(".name")).toHaveText(`${family} #3`);
  await page.evaluate(() => ((window as any).__noReload = true));
  await page.getByRole("button", { name: "Load more products" }).click();
  await expect(rows).toHaveCount(23);
  await expect(rows.last().locator(".name")).toHaveText(`${family} #0`);
  await expect(page.getByRole("button", { name: "Load more products" })).toHaveCount(0);

  // The start of a word finds them too; a single letter is too short, and the page says so.
  await search.getByLabel("Find products").fill(`${family.split(" ").pop()!.slice(0, -1)} shel`);
  await search.getByRole("button", { name: "Search products" }).click();
  await expect(rows).toHaveCount(20);
  await search.getByLabel("Find products").fill("m");
  await search.getByRole("button", { name: "Search products" }).click();
  await expect(page.getByTestId("products-panel").getByRole("alert")).toHaveText("search: type at least 2 letters of a word");

  // Nothing found says so; "Show all products" brings every product back.
  await search.getByLabel("Find products").fill(`${family} nothing`);
  await search.getByRole("button", { name: "Search products" }).click();
  await expect(page.getByTestId("no-products")).toContainText("No product matches");
  await search.getByRole("link", { name: "Show all products" }).click();
  await expect(rows).toHaveCount(20);
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
});

test("stock moves live in the warehouse table and in the order form, warning included", async ({ page }) => {
  await openShop(page);
  const name = unique("Cedar chest");
  const row = await addProduct(page, name, "80", "3");
  const productId = (await row.getAttribute("data-product-id"))!;
  await page.evaluate(() => ((window as any).__noReload = true));

  // Three of three: no warning.
  await placeOrder(page, name, "3");
  const stock = page.getByTestId("chosen-stock");
  await expect(stock).toHaveText("3 in stock");
  await expect(page.getByTestId("stock-warning")).toHaveCount(0);

  // Someone else takes two: the table, the chosen product's stock and the warning follow the feed.
  const other = await apiPlaceOrder(page, productId, 2);
  await expect(page.getByTestId("orders").locator(`tr[data-order-id="${other.id}"]`).getByTestId("order-status")).toHaveText("fulfilled");
  await expect(row.locator(".stock")).toHaveText("1");
  await expect(stock).toHaveText("1 in stock");
  await expect(page.getByTestId("stock-warning")).toHaveText(/More than in stock/);

  // A restock here lifts the warning again.
  await row.getByLabel(`Units of ${name} to add`).fill("5");
  await row.getByRole("button", { name: `Restock ${name}` }).click();
  await expect(row.locator(".stock")).toHaveText("6");
  await expect(stock).toHaveText("6 in stock");
  await expect(page.getByTestId("stock-warning")).toHaveCount(0);
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
});
