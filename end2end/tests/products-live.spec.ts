import { test, expect, Browser, Page } from "@playwright/test";
import { deleteProduct, openShop, unique } from "./helpers";

// A product change made in one browser reaches every other open page
// through the live feed (`product` events), within a second, without a
// reload. (A page whose server restarted meanwhile catches up on them when
// it is back: restart.spec.ts.)

/// How soon another page must show a product change.
const WITHIN = 1_000;

async function twoShops(browser: Browser): Promise<[Page, Page]> {
  const pages: Page[] = [];
  for (const signIn of [true, false]) {
    const page = await (await browser.newContext()).newPage();
    await openShop(page, { signIn });
    await page.evaluate(() => ((window as any).__noReload = true));
    pages.push(page);
  }
  return [pages[0], pages[1]];
}

/// What the warehouse row of a product should look like.
type RowState = { present: boolean; stock?: string };

/// Runs `change`, and returns how long `page` then took to show the row of
/// `name` as `state`: noted by the page itself (a MutationObserver), so the
/// figure is not the polling of the test's assertions.
async function timed(page: Page, name: string, state: RowState, change: () => Promise<void>): Promise<number> {
  await page.evaluate(
    ({ name, state }) => {
      const w = window as any;
      w.__shownAt = undefined;
      const matches = () => {
        const rows = [...document.querySelectorAll('[data-testid="products"] tbody tr')];
        const row = rows.find((tr) => tr.querySelector(".name")?.textContent === name);
        if (!state.present) return !row;
        return !!row && (state.stock === undefined || row.querySelector(".stock")?.textContent === state.stock);
      };
      const observer = new MutationObserver(() => {
        if (matches()) {
          w.__shownAt = Date.now();
          observer.disconnect();
        }
      });
      observer.observe(document.body, { childList: true, subtree: true, characterData: true });
    },
    { name, state },
  );
  const started = Date.now();
  await change();
  const row = page.getByTestId("products").locator("tr", { hasText: name });
  if (!state.present) await expect(row).toHaveCount(0, { timeout: 10_000 });
  else if (state.stock !== undefined) await expect(row.locator(".stock")).toHaveText(state.stock, { timeout: 10_000 });
  else await expect(row).toBeVisible({ timeout: 10_000 });
  const shownAt: number = await page.evaluate(() => (window as any).__shownAt);
  return shownAt - started;
}

test("a product created, restocked or deleted in one browser appears, changes or disappears in another within a second", async ({ browser }) => {
  const [admin, watcher] = await twoShops(browser);
  const name = unique("Live lantern");
  const theirs = watcher.getByTestId("products").locator("tr", { hasText: name });

  // Created: the row appears in the other page, with its stock. (Each time
  // counts from the click in the first page, its own round trip included.)
  const ownRow = admin.getByTestId("products").locator("tr", { hasText: name });
  const form = admin.getByTestId("add-product");
  await form.getByLabel("Name").fill(name);
  await form.getByLabel("Price").fill("14.50");
  await form.getByLabel("Stock").fill("6");
  const created = await timed(watcher, name, { present: true, stock: "6" }, () =>
    form.getByRole("button", { name: "Add product" }).click(),
  );
  await expect(ownRow).toBeVisible();
  expect(created, "created -> shown in the other page (ms)").toBeLessThan(WITHIN);

  // A product created meanwhile joins the other page's table in place: what
  // a person was typing in a row stays.
  const units = theirs.getByLabel(`Units of ${name} to add`);
  await units.fill("3");
  const second = unique("Live lamp");
  await form.getByLabel("Name").fill(second);
  await form.getByLabel("Price").fill("2");
  await form.getByLabel("Stock").fill("1");
  await form.getByRole("button", { name: "Add product" }).click();
  await expect(watcher.getByTestId("products").locator("tr", { hasText: second })).toBeVisible();
  await expect(units).toHaveValue("3");

  // Restocked: the other page's stock follows, from the change itself.
  await ownRow.getByLabel(`Units of ${name} to add`).fill("9");
  const restocked = await timed(watcher, name, { present: true, stock: "15" }, () =>
    ownRow.getByRole("button", { name: `Restock ${name}` }).click(),
  );
  expect(restocked, "restocked -> shown in the other page (ms)").toBeLessThan(WITHIN);

  // The other page can order it meanwhile: the picker offers it.
  const picker = watcher.getByTestId("order-form").getByRole("combobox", { name: "Product" });
  await picker.fill(name);
  await expect(watcher.getByTestId("order-form").getByRole("option").filter({ hasText: `${name} (` })).toHaveCount(1);
  await picker.press("Escape");

  // Deleted: the row goes away in the other page, and the picker no longer offers it.
  const deleted = await timed(watcher, name, { present: false }, () => deleteProduct(ownRow, name));
  expect(deleted, "deleted -> gone from the other page (ms)").toBeLessThan(WITHIN);
  console.log(`products live: created ${created} ms, restocked ${restocked} ms, deleted ${deleted} ms`);
  await picker.fill(`${name} `);
  await picker.fill(name);
  await expect(watcher.getByTestId("order-form").getByRole("option").filter({ hasText: `${name} (` })).toHaveCount(0);

  for (const page of [admin, watcher]) {
    expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
    await page.context().close();
  }
});
