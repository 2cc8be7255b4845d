import { test, expect } from "@playwright/test";
import { PrivateApp } from "../app";
import { addProduct, deleteProduct, openShop, placeOrder, unique } from "./helpers";

// An app of its own, whose server the story stops and starts again; a
// payment delay of 3 s, so that orders placed just before the stop move on
// while the server is down.
let app: PrivateApp;
test.beforeAll(async () => {
  test.setTimeout(120_000);
  app = await PrivateApp.start({ paymentDelayMs: 3000 });
});
test.afterAll(async () => app?.stop());

test("when the server restarts under an open page, the page says it is reconnecting, then goes on where it was without a reload", async ({ browser }) => {
  test.setTimeout(120_000);
  const context = await browser.newContext({ baseURL: app.baseURL });
  const page = await context.newPage();
  await openShop(page, { signIn: true, token: app.adminToken });
  const name = unique("Restart kettle");
  const product = await addProduct(page, name, "12", "10");
  // Places an order through the form; returns its id.
  const placed = page.getByTestId("order-placed").getByRole("link");
  const order = async (quantity: string) => {
    const before = (await placed.count()) ? await placed.getAttribute("href") : null;
    await placeOrder(page, name, quantity);
    await page.getByRole("button", { name: "Place order" }).click();
    await expect(placed).not.toHaveAttribute("href", before ?? "");
    return (await placed.getAttribute("href"))!.replace("/order/", "");
  };

  const orderIds: string[] = [];
  for (const quantity of ["2", "3"]) orderIds.push(await order(quantity));
  const rows = orderIds.map((id) => page.locator(`tr[data-order-id="${id}"]`).getByTestId("order-status"));
  for (const row of rows) await expect(row).toHaveText("pending");

  // From here on the page must neither reload nor fetch its lists again:
  // what it missed comes from the feed's replay.
  await page.evaluate(() => ((window as any).__noReload = true));
  const listFetches: string[] = [];
  page.on("request", (request) => {
    if (/\/api\/(orders_page|products_page)/.test(request.url())) listFetches.push(request.url());
  });

  const restarted = app.restartServer(5_000);
  await expect(page.getByTestId("live-indicator")).toHaveText("reconnecting…");
  await restarted;

  // Back: the orders paid and fulfilled while the server was down show it,
  // and the stock follows.
  await expect(page.getByTestId("live-indicator")).toHaveText("live", { timeout: 30_000 });
  for (const row of rows) await expect(row).toHaveText("fulfilled", { timeout: 30_000 });
  await expect(product.locator(".stock")).toHaveText("5");
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
  expect(listFetches).toEqual([]);

  // And it goes on: an order placed now moves live as before.
  const orderId = await order("1");
  await expect(page.locator(`tr[data-order-id="${orderId}"]`).getByTestId("order-status")).toHaveText("fulfilled", { timeout: 30_000 });
  await expect(product.locator(".stock")).toHaveText("4");
  await context.close();
});

test("products changed through another server while this page's server restarts reach the page when it is back", async ({ browser }) => {
  test.setTimeout(120_000);
  const other = await app.addServer();
  const watcher = await (await browser.newContext({ baseURL: app.baseURL })).newPage();
  const admin = await (await browser.newContext({ baseURL: other })).newPage();
  await openShop(watcher, { signIn: false });
  await openShop(admin, { signIn: true, token: app.adminToken });
  const kept = unique("Resumed rug");
  const gone = unique("Resumed vase");
  const keptRow = await addProduct(admin, kept, "30", "2");
  const goneRow = await addProduct(admin, gone, "8", "4");
  const theirs = (name: string) => watcher.getByTestId("products").locator("tr", { hasText: name });
  await expect(theirs(kept).locator(".stock")).toHaveText("2");
  await expect(theirs(gone)).toBeVisible();
  await watcher.evaluate(() => ((window as any).__noReload = true));

  // The watcher's server goes down; meanwhile the other server restocks one
  // product, deletes the other and adds a third.
  const added = unique("Resumed lamp");
  const restarted = (async () => {
    await expect(watcher.getByTestId("live-indicator")).toHaveText("reconnecting…");
    await keptRow.getByLabel(`Units of ${kept} to add`).fill("5");
    await keptRow.getByRole("button", { name: `Restock ${kept}` }).click();
    await expect(keptRow.locator(".stock")).toHaveText("7");
    await deleteProduct(goneRow, gone);
    await expect(goneRow).toHaveCount(0);
    await addProduct(admin, added, "3", "1");
  })();
  await app.restartServer(8_000);
  await restarted;

  // Back: the feed resumes where it was and brings all three changes.
  await expect(watcher.getByTestId("live-indicator")).toHaveText("live", { timeout: 30_000 });
  await expect(theirs(kept).locator(".stock")).toHaveText("7");
  await expect(theirs(gone)).toHaveCount(0);
  await expect(theirs(added).locator(".stock")).toHaveText("1");
  expect(await watcher.evaluate(() => (window as any).__noReload)).toBe(true);
  for (const page of [admin, watcher]) await page.context().close();
});
