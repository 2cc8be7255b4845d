// The app's own Redis, which scripts/test passes in REDIS_URL: stories write
// into it what no page or API can, as a broken producer would.
import { execFileSync } from "node:child_process";

export const redisURL = process.env.REDIS_URL;

/// An order-completed entry whose order id is not an id: the warehouse
/// consumer cannot parse it and dead-letters it at once.
export function writePoison(orderId: string) {
  execFileSync("redis-cli", ["-u", redisURL!, "XADD", "stockflow:{p00}:order-completed", "*", "order_id", orderId]);
}
