import { test, expect } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { execFileSync } from "node:child_process";
import { PrivateApp, binary } from "../app";

// The order form's picker over a catalogue of 100,000 products (an app of
// its own, loaded by `bench seed`): typed to, moved through with the arrows
// and chosen with Enter, keyboard only; each search stays quick however big
// the catalogue, and axe-core finds nothing serious with the list open.
const products = 100_000;

let app: PrivateApp;
test.beforeAll(async () => {
  test.setTimeout(5 * 60_000);
  app = await PrivateApp.start({ paymentDelayMs: 0 });
  execFileSync(binary("bench"), ["seed", "--url", app.baseURL, "--redis-url", app.redisURL,
    "--products", String(products), "--orders", "0"], {
    env: { ...process.env, ADMIN_TOKEN: app.adminToken },
    stdio: ["ignore", "inherit", "inherit"],
  });
});
test.afterAll(async () => app?.stop());

test(`the picker finds and chooses one of ${products.toLocaleString("en-US")} products with the keyboard alone`, async ({ browser }) => {
  const context = await browser.newContext({ baseURL: app.baseURL });
  const page = await context.newPage();
  await page.goto("/");
  await expect(page.getByTestId("live-indicator")).toHaveText("live");
  const form = page.getByTestId("order-form");
  const picker = form.getByRole("combobox", { name: "Product" });
  await picker.focus();

  // Each answer of the product search, timed by the page's own requests.
  const searches: number[] = [];
  page.on("requestfinished", (request) => {
    if (request.url().includes("/api/products_page")) searches.push(Math.round(request.timing().responseEnd));
  });

  // "Walnut desk 99985" names exactly one of them (product n is named "<wood n % 8> <thing n / 8 % 8> <n>").
  await page.keyboard.type("Walnut desk 99985", { delay: 30 });
  const option = form.getByRole("option").filter({ hasText: "Walnut desk 99985 (" });
  await expect(option).toHaveCount(1);
  await expect(picker).toHaveAttribute("aria-expanded", "true");
  expect(await new AxeBuilder({ page }).include('[data-testid="order-form"]').analyze().then((r) =>
    r.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => v.id))).toEqual([]);

  await page.keyboard.press("ArrowDown");
  await expect(picker).toHaveAttribute("aria-activedescendant", (await option.getAttribute("id"))!);
  await page.keyboard.press("Enter");
  await expect(picker).toHaveAttribute("aria-expanded", "false");
  await expect(picker).toHaveValue("Walnut desk 99985");
  await expect(page.getByTestId("preview-total")).toHaveText("1.20");

  // A word shared by an eighth of the catalogue still answers with a page of matches, quickly.
  await picker.fill("");
  await page.keyboard.type("oak", { delay: 30 });
  await expect(form.getByRole("option").first()).toContainText("Oak");
  await page.keyboard.press("Escape");
  await expect(picker).toHaveAttribute("aria-expanded", "false");

  console.log(`picker over ${products} products: search answers in ${searches.join(", ")} ms`);
  expect(Math.max(...searches), "the slowest search (ms)").toBeLessThan(1_000);
  await context.close();
});
