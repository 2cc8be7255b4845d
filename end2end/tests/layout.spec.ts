import { test, expect } from "@playwright/test";
import { addProduct, deleteProduct, openShop, placeOrder, unique } from "./helpers";

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
