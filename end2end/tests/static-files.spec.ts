import { test, expect, Page, Response } from "@playwright/test";
import { apiAddProduct, apiPlaceOrder, signIn, unique } from "./helpers";

const YEAR = "public, max-age=31536000, immutable";

/// Opens `path` and waits until it is hydrated and live; returns every
/// answer the page got, and those of 400 or more.
async function open(page: Page, path: string) {
  const answers: Response[] = [];
  const listener = (r: Response) => answers.push(r);
  page.on("response", listener);
  await page.goto(path);
  await expect(page.getByTestId("live-indicator")).toHaveText("live");
  await page.waitForLoadState("networkidle");
  page.off("response", listener);
  return { answers, failed: answers.filter((r) => r.status() >= 400).map((r) => `${r.status()} ${r.url()}`) };
}

test("no page asks for a file that is missing, signed in or out", async ({ page }) => {
  const productId = await apiAddProduct(page, unique("Static stool"), "4.20", 3);
  const orderId = (await apiPlaceOrder(page, productId, 1)).id;
  const pages = ["/", `/order/${orderId}`, "/dead-letters"];
  for (const path of pages) expect((await open(page, path)).failed, `signed out, ${path}`).toEqual([]);
  if (process.env.ADMIN_TOKEN) {
    await signIn(page, process.env.ADMIN_TOKEN);
    await expect(page.getByTestId("dead-letters")).toBeVisible();
    for (const path of pages) expect((await open(page, path)).failed, `signed in, ${path}`).toEqual([]);
  }
});

test("the bundle's files carry their hash and are kept for a year; pages and the icon are checked again", async ({ page }) => {
  const { answers } = await open(page, "/");
  const html = answers.find((r) => new URL(r.url()).pathname === "/")!;
  expect(html.headers()["cache-control"]).toBe("no-cache");

  // The WASM, its JS and the CSS, as the browser fetched them.
  const bundle = answers.filter((r) => new URL(r.url()).pathname.startsWith("/pkg/"));
  const kinds = bundle.map((r) => new URL(r.url()).pathname.split(".").pop()).sort();
  expect(kinds).toEqual(["css", "js", "wasm"]);
  for (const answer of bundle) {
    const name = new URL(answer.url()).pathname.slice("/pkg/".length);
    expect(name, "a content hash in the name").toMatch(/^stockflow\.[A-Za-z0-9_-]{22}\.(wasm|js|css)$/);
    expect(answer.status()).toBe(200);
    const headers = await answer.allHeaders();
    expect(headers["cache-control"]).toBe(YEAR);
    // Precompressed: brotli when the browser accepts it (Chromium does on
    // localhost and HTTPS), else gzip.
    const accepted = (await answer.request().allHeaders())["accept-encoding"] ?? "";
    expect(headers["content-encoding"]).toBe(accepted.includes("br") ? "br" : "gzip");
    expect(headers["vary"]?.toLowerCase()).toContain("accept-encoding");
  }

  // A client that accepts only gzip gets the gzip file; one that accepts
  // nothing gets the file as it is, with the same cache headers.
  const wasm = bundle.find((r) => r.url().endsWith(".wasm"))!.url();
  const gz = await page.request.get(wasm, { headers: { "Accept-Encoding": "gzip" } });
  expect(gz.headers()["content-encoding"]).toBe("gzip");
  expect(gz.headers()["content-type"]).toBe("application/wasm");
  const plain = await page.request.get(wasm, { headers: { "Accept-Encoding": "identity" } });
  expect(plain.headers()["content-encoding"]).toBeUndefined();
  expect(plain.headers()["cache-control"]).toBe(YEAR);
  // The plain file starts with WebAssembly's magic number.
  expect([...(await plain.body()).subarray(0, 4)]).toEqual([0x00, 0x61, 0x73, 0x6d]);

  const icon = await page.request.get("/favicon.svg");
  expect(icon.status()).toBe(200);
  expect(icon.headers()["cache-control"]).toBe("no-cache");
});
