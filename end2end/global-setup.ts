// Gives the stories an app to run against. scripts/test starts one (with its
// own Redis, workers and a cluster-backed twin) and passes BASE_URL; without
// it, as under `cargo leptos end-to-end`, this starts a private one of the
// last build (see app.ts) and tells the stories where it is, as scripts/test
// would: BASE_URL, REDIS_URL and ADMIN_TOKEN.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { PrivateApp, ROOT, profile } from "./app";

export default async function globalSetup() {
  // scripts/ui-speed runs a story that starts an app of its own: none to share.
  if (process.env.BASE_URL || process.env.E2E_OWN_APPS_ONLY) return;
  // cargo-leptos built the server and the site; the site's files are
  // precompressed here as scripts/test has them (scripts/lib.sh,
  // build_site), and the workers and the bench's seeding (for the speed
  // story) are built with the same profile.
  const built = profile();
  execFileSync("node", [join(ROOT, "scripts", "bundle.mjs"), "compress", join(ROOT, "target", "site")], {
    stdio: "inherit",
  });
  execFileSync("cargo", ["build", "-p", "workers", "-p", "bench", ...(built === "release" ? ["--release"] : [])], {
    cwd: ROOT,
    stdio: "inherit",
  });
  const app = await PrivateApp.start();
  process.env.BASE_URL = app.baseURL;
  process.env.REDIS_URL = app.redisURL;
  process.env.ADMIN_TOKEN = app.adminToken;
  process.env.E2E_PROFILE = built;
  console.log(`stories run against a private app at ${app.baseURL} (Redis ${app.redisURL}, ${built} build)`);
  return async () => app.stop();
}
