import { test, expect, Locator } from "@playwright/test";
import { addProduct, apiAddProduct, apiPlaceOrder, deleteProduct, openShop, placeOrder, unique } from "./helpers";

// No panel may cover another's controls: a click on a covered button times out.
for (const [screen, size] of [
  ["a laptop", { width: 1280, height: 720 }],
  ["a phone", { width: 390, height: 844 }],
] as const) {
  test(`every control can be reached on ${screen}`, async ({ page }) => {
    await page.setViewportSize(size);
    await openShop(page);
    const name = unique("Walnut desk with a rather long name");
    const row = await addProduct(page, name, "349", "4");
    // Every action of the row is on the screen as it is: nothing to scroll sideways to.
    for (const control of [row.getByLabel(`Units of ${name} to add`), row.getByRole("button", { name: `Restock ${name}` }),
      row.getByRole("button", { name: `Delete ${name}`, exact: true })]) {
      const box = await control.boundingBox();
      expect(box, `${await control.getAttribute("aria-label")} is laid out`).not.toBeNull();
      expect(box!.x, "starts on the screen").toBeGreaterThanOrEqual(0);
      expect(box!.x + box!.width, "ends on the screen").toBeLessThanOrEqual(size.width);
    }
    await row.getByLabel(`Units of ${name} to add`).fill("2");
    await row.getByRole("button", { name: "Restock" }).click();
    await expect(row.locator(".stock")).toHaveText("6");

    await placeOrder(page, name, "1");
    await expect(page.getByTestId("preview-total")).toHaveText("418.80");
    await page.getByRole("button", { name: "Place order" }).click();
    await expect(page.getByTestId("order-placed")).toContainText("418.80");

    await deleteProduct(row, name);
    await expect(page.getByTestId("products").locator("tr", { hasText: name })).toHaveCount(0);
  });
}

// The order page and the dead letters never make the page scroll sideways.
for (const [screen, size] of [
  ["a phone", { width: 390, height: 844 }],
  ["a wide screen", { width: 1400, height: 900 }],
] as const) {
  test(`the order page and the dead letters fit on ${screen}`, async ({ page }) => {
    await page.setViewportSize(size);
    await openShop(page);
    const name = unique("Teak sideboard with a rather long name");
    await addProduct(page, name, "1299.99", "3");
    await placeOrder(page, name, "2");
    await page.getByRole("button", { name: "Place order" }).click();
    await page.getByTestId("order-placed").getByRole("link").click();
    await expect(page.getByTestId("order-detail").getByTestId("order-status")).toHaveText("fulfilled");
    const sideways = () => page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);
    expect(await sideways()).toBe(false);
    await page.getByTestId("dead-letter-link").click();
    await expect(page.getByTestId("dead-letters")).toBeVisible();
    expect(await sideways()).toBe(false);
  });
}

// A big shop: 200 products with long names (one word too long for any
// line), each with an order, loaded over REST and all listed (every "Load
// more"). Neither a phone nor a wide screen scrolls sideways, on the shop, an
// order's page and the dead letters.
test.describe("a shop of 200 products with long names", () => {
  const tag = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
  const longName = (i: number) =>
    `Layout ${tag} ${i} extraordinarily comfortable reclining armchair upholstered in hand-woven wool with ` +
    `walnut legs Supercalifragilisticexpialidociousunbreakablewordthatneverwrapsbyitself`;
  let orderId = "";

  test.beforeAll(async ({ browser }) => {
    const page = await browser.newPage();
    const ids: string[] = [];
    for (let start = 0; start < 200; start += 20) {
      const batch = await Promise.all(
        Array.from({ length: 20 }, (_, k) => apiAddProduct(page, longName(start + k), "1234.56", 1000)),
      );
      ids.push(...batch);
    }
    for (let start = 0; start < ids.length; start += 20) {
      const placed = await Promise.all(ids.slice(start, start + 20).map((id) => apiPlaceOrder(page, id, 2)));
      orderId = placed[0].id;
    }
    await page.close();
  });

  /// Clicks `button` until `rows` has `count` rows.
  async function loadAll(button: Locator, rows: Locator, count: number) {
    for (let i = 0; i < 20 && (await rows.count()) < count; i++) {
      const before = await rows.count();
      await button.click();
      await expect(rows).not.toHaveCount(before);
    }
    await expect(rows).toHaveCount(count);
  }

  for (const [screen, size] of [
    ["a phone", { width: 390, height: 844 }],
    ["a wide screen", { width: 1400, height: 900 }],
  ] as const) {
    test(`nothing scrolls sideways on ${screen}`, async ({ page }) => {
      await page.setViewportSize(size);
      const sideways = () =>
        page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      await openShop(page);
      // Only these products and their orders, every page of them.
      const search = encodeURIComponent(`Layout ${tag} `);
      await page.goto(`/?product=${search}&q=${search}`);
      await expect(page.getByTestId("live-indicator")).toHaveText("live");
      const products = page.getByTestId("products").locator("tbody tr", { hasText: `Layout ${tag} ` });
      const orders = page.getByTestId("orders").locator("tbody tr", { hasText: `Layout ${tag} ` });
      await loadAll(page.getByRole("button", { name: "Load more products" }), products, 200);
      // An order search covers the 50 newest products whose names match, and says so.
      await expect(page.getByTestId("search-narrowed")).toBeVisible();
      await loadAll(page.getByRole("button", { name: "Load more orders" }), orders, 50);
      expect(await sideways(), "the shop").toBeLessThanOrEqual(0);

      // The order form names a product in full, the price preview included.
      await placeOrder(page, longName(7), "3");
      await expect(page.getByTestId("preview-total")).toHaveText("4444.42");
      expect(await sideways(), "the shop with a long product chosen").toBeLessThanOrEqual(0);

      await page.goto(`/order/${orderId}`);
      await expect(page.getByTestId("order-product")).toContainText(`Layout ${tag} `);
      expect(await sideways(), "an order's page").toBeLessThanOrEqual(0);

      await page.goto("/dead-letters");
      await expect(page.getByTestId("live-indicator")).toHaveText("live");
      expect(await sideways(), "the dead letters").toBeLessThanOrEqual(0);
    });
  }
});
