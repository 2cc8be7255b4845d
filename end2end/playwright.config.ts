import { defineConfig, chromium } from "@playwright/test";
import { existsSync } from "node:fs";

// The app under test: the one scripts/test started (private redis-server,
// server, workers), whose address it passes in BASE_URL; without BASE_URL
// (`cargo leptos end-to-end`, or `npx playwright test` alone) the global
// setup starts a private one and sets BASE_URL before the stories run.
const baseURL = process.env.BASE_URL;

// Playwright's own Chromium when it is installed, else the system one
// (never downloaded here: `npx playwright install` needs the internet).
function chromiumPath(): string | undefined {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  try {
    if (existsSync(chromium.executablePath())) return undefined;
  } catch {
    // No bundled browser registered.
  }
  return "/usr/bin/chromium";
}

export default defineConfig({
  testDir: "./tests",
  globalSetup: "./global-setup.ts",
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  use: {
    baseURL,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: {
      executablePath: chromiumPath(),
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
  projects: [{ name: "chromium", use: { browserName: "chromium" } }],
});
