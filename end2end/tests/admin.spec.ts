import { test, expect } from "@playwright/test";
import { addProduct, openShop, signIn, submitProduct, unique } from "./helpers";

test("warehouse changes need the admin sign-in, held in an HttpOnly SameSite=Strict cookie", async ({ page }) => {
  const token = process.env.ADMIN_TOKEN;
  expect(token, "scripts/test starts the server with an ADMIN_TOKEN").toBeTruthy();
  await openShop(page, { signIn: false });
  await expect(page.getByTestId("admin-sign-in")).toBeVisible();

  // No sign-in: the change is refused with a message, and nothing is added.
  const name = unique("Locked cabinet");
  await submitProduct(page, name, "120", "2");
  await expect(page.getByTestId("add-product-error")).toHaveText("Sign in as admin to change products.");
  await expect(page.locator("tr", { hasText: name })).toHaveCount(0);

  // A wrong token is refused.
  await signIn(page, "not-the-token");
  await expect(page.getByTestId("sign-in-error")).toHaveText("That admin token is wrong.");
  await expect(page.getByTestId("admin-signed-in")).toHaveCount(0);

  // The right one opens a session that scripts cannot read.
  await signIn(page, token!);
  await expect(page.getByTestId("admin-signed-in")).toBeVisible();
  const cookie = (await page.context().cookies()).find((c) => c.name === "stockflow_admin");
  expect(cookie?.httpOnly).toBe(true);
  expect(cookie?.sameSite).toBe("Strict");
  expect(await page.evaluate(() => document.cookie)).not.toContain("stockflow_admin");

  // Now the warehouse can change: add and restock.
  const row = await addProduct(page, name, "120", "2");
  await expect(row.locator(".stock")).toHaveText("2");
  await row.getByLabel(`Units of ${name} to add`).fill("5");
  await row.getByRole("button", { name: `Restock ${name}` }).click();
  await expect(row.locator(".stock")).toHaveText("7");

  // Signed in across a reload; signed out after signing out.
  await page.reload();
  await expect(page.getByTestId("admin-signed-in")).toBeVisible();
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByTestId("admin-sign-in")).toBeVisible();
  await row.getByRole("button", { name: `Delete ${name}`, exact: true }).click();
  await row.getByRole("button", { name: `Really delete ${name}?`, exact: true }).click();
  await expect(page.getByTestId("delete-error")).toHaveText("Sign in as admin to change products.");
});
