import { test, expect, Page } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { apiAddProduct, apiPlaceOrder, signIn, unique } from "./helpers";
import { redisURL, writePoison } from "./redis";

/// axe-core's serious and critical findings on the page as it is now, one
/// line each: rule, impact, and the elements it found.
async function seriousViolations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]).analyze();
  return results.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

async function open(page: Page, path: string) {
  await page.goto(path);
  await expect(page.getByTestId("live-indicator")).toHaveText("live");
  await page.waitForLoadState("networkidle");
}

test("every view has no serious or critical accessibility violation, signed in and out", async ({ page }) => {
  // Something in every list: a product, an order of it, a refunded order.
  const productId = await apiAddProduct(page, unique("Axe-checked armchair"), "149.90", 1);
  const orderId = (await apiPlaceOrder(page, productId, 1)).id;
  await apiPlaceOrder(page, productId, 5);
  // And a dead letter, when the story can reach the app's Redis.
  if (redisURL) writePoison(`not-an-id-${unique("axe").replace(/\W/g, "")}`);
  const views = ["/", `/order/${orderId}`, "/order/not-an-id", "/dead-letters"];

  const found: Record<string, string[]> = {};
  for (const path of views) {
    await open(page, path);
    found[`signed out: ${path}`] = await seriousViolations(page);
  }
  if (process.env.ADMIN_TOKEN) {
    // The shop's sign-in form and its error.
    await open(page, "/");
    await signIn(page, "not-the-token");
    await expect(page.getByTestId("sign-in-error")).toBeVisible();
    found["signed out: / with a wrong token"] = await seriousViolations(page);
    await signIn(page, process.env.ADMIN_TOKEN);
    await expect(page.getByTestId("admin-signed-in")).toBeVisible();
    for (const path of views) {
      await open(page, path);
      if (path === "/dead-letters" && redisURL) {
        await expect(page.getByTestId("dead-letters").locator("tr[data-dead-letter-id]").first()).toBeVisible();
      }
      found[`signed in: ${path}`] = await seriousViolations(page);
    }
    // A product asking for confirmation before it is deleted.
    await open(page, "/");
    await page.getByTestId("products").getByRole("button", { name: /^Delete / }).first().click();
    found["signed in: / confirming a deletion"] = await seriousViolations(page);
  }
  expect(Object.keys(found).length).toBeGreaterThanOrEqual(views.length);
  for (const [view, violations] of Object.entries(found)) expect(violations, view).toEqual([]);
});
