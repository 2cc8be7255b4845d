import { test, expect, Page } from "@playwright/test";
import { apiAddProduct, openShop, signIn, unique } from "./helpers";

/// What has the keyboard focus: its tag, name or label, and test id.
async function focused(page: Page) {
  return page.evaluate(() => {
    const el = document.activeElement as HTMLElement | null;
    return {
      tag: el?.tagName.toLowerCase() ?? "",
      id: el?.id ?? "",
      name: (el?.getAttribute("aria-label") ?? el?.textContent ?? "").trim(),
      testid: el?.getAttribute("data-testid") ?? "",
      label: (el?.closest("label")?.firstChild?.textContent ?? "").trim(),
    };
  });
}

/// Presses Tab, as a person would, until `wanted` has the focus (at most 300 times).
async function tabTo(page: Page, what: string, wanted: (f: Awaited<ReturnType<typeof focused>>) => boolean) {
  for (let i = 0; i < 300; i++) {
    await page.keyboard.press("Tab");
    if (wanted(await focused(page))) return;
  }
  throw new Error(`Tab never reached ${what}`);
}

test("a person orders and filters the orders with the keyboard alone, and hears what happened", async ({ page }) => {
  await openShop(page);
  const name = unique("Keyboard stool");
  const productId = await apiAddProduct(page, name, "10", 5);
  await page.reload();
  await expect(page.getByTestId("live-indicator")).toHaveText("live");
  await page.evaluate(() => ((window as any).__noReload = true));

  // Skip the warehouse: the first stop of the keyboard leads to the order form.
  await page.keyboard.press("Tab");
  expect((await focused(page)).name).toBe("Skip to the order form");
  await page.keyboard.press("Enter");
  expect((await focused(page)).id).toBe("place-order");

  // Product (typing its name finds it, Down moves to it, Enter picks it; Escape
  // closes the list), quantity, Place order.
  await tabTo(page, "the product picker", (f) => f.id === "product-search");
  const picker = page.getByTestId("order-form").getByRole("combobox", { name: "Product" });
  await page.keyboard.type(name);
  await expect(picker).toHaveAttribute("aria-expanded", "true");
  const option = page.getByRole("option").filter({ hasText: `${name} (5 in stock)` });
  await expect(option).toHaveCount(1);
  await page.keyboard.press("ArrowDown");
  await expect(picker).toHaveAttribute("aria-activedescendant", (await option.getAttribute("id"))!);
  await expect(option).toHaveAttribute("aria-selected", "true");
  await page.keyboard.press("Enter");
  await expect(picker).toHaveAttribute("aria-expanded", "false");
  await expect(picker).toHaveValue(name);
  await expect(page.getByTestId("order-form").locator('input[name="product_id"]')).toHaveValue(productId);
  await page.keyboard.press("ArrowDown");
  await expect(picker).toHaveAttribute("aria-expanded", "true");
  await page.keyboard.press("Escape");
  await expect(picker).toHaveAttribute("aria-expanded", "false");
  await page.keyboard.press("Tab");
  expect((await focused(page)).label).toBe("Quantity");
  await page.keyboard.press("ControlOrMeta+a");
  await page.keyboard.type("2");
  await expect(page.getByTestId("preview-total")).toHaveText("24.00");
  await tabTo(page, "Place order", (f) => f.name === "Place order");
  await page.keyboard.press("Enter");

  // The live region says it was placed, then how it went.
  const announcer = page.getByTestId("announcer");
  await expect(announcer).toHaveAttribute("aria-live", "polite");
  await expect(announcer).toHaveText(/^Order \w{8} placed: 24\.00 total\.$/);
  const short = (await announcer.textContent())!.split(" ")[1];
  await expect(announcer).toHaveText(`Order ${short} fulfilled.`);

  // Filter the orders: to the "Fulfilled" link, Enter.
  await tabTo(page, "the Fulfilled filter", (f) => f.testid === "filter-fulfilled");
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(/status=fulfilled/);
  await expect(page.getByTestId("filter-fulfilled")).toHaveAttribute("aria-current", "true");
  await expect(page.getByTestId("orders").locator("tbody tr").first()).toContainText(short);
  await expect(page.getByTestId("orders").getByTestId("order-status").filter({ hasNotText: "fulfilled" })).toHaveCount(0);

  // Deleting asks first; the focus goes from each button to the one that replaced it.
  await tabTo(page, `Delete ${name}`, (f) => f.name === `Delete ${name}`);
  await page.keyboard.press("Enter");
  expect((await focused(page)).name).toBe(`Really delete ${name}?`);
  await page.keyboard.press("Tab");
  expect((await focused(page)).name).toBe(`Cancel deleting ${name}`);
  await page.keyboard.press("Enter");
  expect((await focused(page)).name).toBe(`Delete ${name}`);
  await page.keyboard.press("Enter");
  await page.keyboard.press("Enter");
  await expect(page.getByTestId("products").locator("tr", { hasText: name })).toHaveCount(0);
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
});

/// The accessible names of every button in `page`'s accessibility tree.
async function buttonNames(page: Page): Promise<string[]> {
  const tree = await page.locator("body").ariaSnapshot();
  return [...tree.matchAll(/- button "((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]);
}

test("every button says what it does and to what: no two share a name", async ({ page }) => {
  await openShop(page);
  const name = unique("Named shelf");
  await apiAddProduct(page, name, "5", 1);
  await page.reload();
  await expect(page.getByTestId("live-indicator")).toHaveText("live");
  // A product asking for confirmation shows its "Really delete" and "Cancel".
  await page.getByRole("button", { name: `Delete ${name}`, exact: true }).click();
  await expect(page.getByRole("button", { name: `Cancel deleting ${name}` })).toBeVisible();

  const shop = await buttonNames(page);
  expect(shop).toEqual(expect.arrayContaining([`Restock ${name}`, `Really delete ${name}?`, "Search orders", "Search products", "Place order"]));
  expect(shop.filter((n, i) => shop.indexOf(n) !== i)).toEqual([]);
  expect(shop.filter((n) => n.trim() === "")).toEqual([]);

  await page.goto("/dead-letters");
  if (process.env.ADMIN_TOKEN && (await page.getByTestId("dead-letters-sign-in").count())) {
    await signIn(page, process.env.ADMIN_TOKEN);
  }
  await expect(page.getByTestId("dead-letters")).toBeVisible();
  const letters = await buttonNames(page);
  expect(letters.filter((n, i) => letters.indexOf(n) !== i)).toEqual([]);
});
