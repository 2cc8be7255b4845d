import { test, expect } from "@playwright/test";
import { addProduct, openShop, placeOrder, unique } from "./helpers";

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

    await row.getByRole("button", { name: `Delete ${name}` }).click();
    await expect(page.getByTestId("products").locator("tr", { hasText: name })).toHaveCount(0);
  });
}
