// What the stories share: opening the shop, signing in, adding and ordering products.
import { expect, Locator, Page } from "@playwright/test";

/// The REST API's admin header, when the app under test has an ADMIN_TOKEN.
const admin = () => (process.env.ADMIN_TOKEN ? { Authorization: `Bearer ${process.env.ADMIN_TOKEN}` } : undefined);

/// Adds a product over REST (as a script elsewhere would); returns its id.
export async function apiAddProduct(page: Page, name: string, price: string, quantity: number): Promise<string> {
  const answer = await page.request.post("/product", { data: { name, price, quantity }, headers: admin() });
  expect(answer.status()).toBe(201);
  return (await answer.json()).id;
}

/// Places an order over REST (as another shopper would); returns it.
export async function apiPlaceOrder(page: Page, productId: string, quantity: number): Promise<{ id: string }> {
  const answer = await page.request.post("/orders", { data: { product_id: productId, quantity } });
  expect(answer.status()).toBe(201);
  return answer.json();
}

// Each story uses its own product name, so the stories do not depend on each other.
export const unique = (name: string) => `${name} ${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;

/// Opens the shop, hydrated and subscribed to the live feed, and signs in as
/// admin when the server under test has an ADMIN_TOKEN (scripts/test sets one).
/// `token` is the admin token of the app under test (default: ADMIN_TOKEN).
export async function openShop(page: Page, options: { signIn: boolean; token?: string } = { signIn: true }) {
  await page.goto("/");
  await expect(page.getByTestId("live-indicator")).toHaveText("live");
  const token = options.token ?? process.env.ADMIN_TOKEN;
  if (options.signIn && token) {
    await signIn(page, token);
    await expect(page.getByTestId("admin-signed-in")).toBeVisible();
  }
}

export async function signIn(page: Page, token: string) {
  const form = page.getByTestId("admin-sign-in");
  await form.getByLabel("Admin token").fill(token);
  await form.getByRole("button", { name: "Sign in" }).click();
}

/// Fills in and sends the add-product form, whatever the answer.
export async function submitProduct(page: Page, name: string, price: string, stock: string) {
  const form = page.getByTestId("add-product");
  await form.getByLabel("Name").fill(name);
  await form.getByLabel("Price").fill(price);
  await form.getByLabel("Stock").fill(stock);
  await form.getByRole("button", { name: "Add product" }).click();
}

/// Adds a product through the form and returns its row in the warehouse table.
export async function addProduct(page: Page, name: string, price: string, stock: string) {
  await submitProduct(page, name, price, stock);
  const row = page.getByTestId("products").locator("tr", { hasText: name });
  await expect(row).toBeVisible();
  return row;
}

export async function placeOrder(page: Page, productName: string, quantity: string) {
  const form = page.getByTestId("order-form");
  const picker = form.getByRole("combobox", { name: "Product" });
  await picker.fill(productName);
  const option = form.getByRole("option").filter({ hasText: `${productName} (` });
  await expect(option).toHaveCount(1);
  await option.click();
  await expect(picker).toHaveValue(productName);
  await form.getByLabel("Quantity").fill(quantity);
}

/// Records every text a status badge shows, so a test can assert the sequence.
export async function watchStatus(badge: Locator) {
  await badge.evaluate((el) => {
    const seen: string[] = [(el.textContent ?? "").trim()];
    (window as any).__statuses = seen;
    new MutationObserver(() => {
      const text = (el.textContent ?? "").trim();
      if (seen[seen.length - 1] !== text) seen.push(text);
    }).observe(el, { childList: true, characterData: true, subtree: true });
  });
}

/// Deletes a product from its warehouse row, through the confirm step.
export async function deleteProduct(row: Locator, name: string) {
  await row.getByRole("button", { name: `Delete ${name}`, exact: true }).click();
  await row.getByRole("button", { name: `Really delete ${name}?`, exact: true }).click();
}
