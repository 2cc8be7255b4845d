// The REST API, for stories that need data in the shop before a page opens.
import { APIRequestContext, expect } from "@playwright/test";

/// The admin's bearer header when the app under test has an ADMIN_TOKEN.
export function adminHeaders(): Record<string, string> {
  return process.env.ADMIN_TOKEN ? { Authorization: `Bearer ${process.env.ADMIN_TOKEN}` } : {};
}

/// Adds a product over REST (`page.request` or a test's `request`); returns its id.
export async function restAddProduct(api: APIRequestContext, name: string, price: string, quantity: number): Promise<string> {
  const answer = await api.post("/product", { data: { name, price, quantity }, headers: adminHeaders() });
  expect(answer.status()).toBe(201);
  return (await answer.json()).id;
}

/// Places an order over REST, as another shopper would; returns its id.
export async function restPlaceOrder(api: APIRequestContext, productId: string, quantity: number): Promise<string> {
  const answer = await api.post("/orders", { data: { product_id: productId, quantity } });
  expect(answer.status()).toBe(201);
  return (await answer.json()).id;
}
