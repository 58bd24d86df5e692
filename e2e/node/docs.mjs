// docs.mjs drives the facade's API reference page (GET /docs/) in headless
// Chromium with puppeteer-core, as a person would: it reads the operations
// shown, enters a caller key under "Authorize", tries GenerateOTP and
// GetServiceStatus, and saves a screenshot. It prints one JSON object of
// what it saw, even when a step fails; the Go test (e2e/docs_test.go)
// decides what is right, and fails on any console error or request to
// another host that it lists.
//
//   node docs.mjs --base http://127.0.0.1:PORT --path '/docs/?url=...' --key KEY \
//     --chromium /usr/bin/chromium --profile DIR --screenshot FILE \
//     --otp-body JSON --service-id ID
import { parseArgs } from "node:util";
import puppeteer from "puppeteer-core";

const { values: args } = parseArgs({
  options: {
    base: { type: "string" },
    path: { type: "string", default: "/docs/" },
    key: { type: "string" },
    chromium: { type: "string" },
    profile: { type: "string" },
    screenshot: { type: "string" },
    "otp-body": { type: "string" },
    "service-id": { type: "string" },
    "timeout-ms": { type: "string", default: "30000" },
  },
});
for (const name of ["base", "key", "chromium", "profile", "screenshot", "otp-body", "service-id"]) {
  if (!args[name]) {
    console.error(`docs.mjs: --${name} is required`);
    process.exit(2);
  }
}
const timeout = Number(args["timeout-ms"]);

const seen = {
  operations: [],
  responseCodes: {},
  consoleErrors: [],
  pageErrors: [],
  cspViolations: [],
  requests: [],
  apiAuthorization: [],
  otp: null,
  notFound: null,
  // The step that failed, if one did: what was seen up to it is printed
  // all the same, so that the test can say why.
  error: "",
};

const browser = await puppeteer.launch({
  executablePath: args.chromium,
  headless: true,
  userDataDir: args.profile,
  // Nothing but the page: no sandbox (tests may run as root), no GPU, and
  // none of Chromium's own traffic (updates, sync, safe browsing), so that
  // every request seen is the page's.
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
  defaultViewport: { width: 1280, height: 900 },
  protocolTimeout: timeout * 2,
});
const page = await browser.newPage();
try {
  page.setDefaultTimeout(timeout);
  page.on("console", (msg) => {
    if (msg.type() === "error") {
      seen.consoleErrors.push({ text: msg.text(), url: msg.location()?.url ?? "" });
    }
  });
  page.on("pageerror", (err) => seen.pageErrors.push(String(err)));
  page.on("request", (req) => {
    seen.requests.push(req.url());
    if (new URL(req.url()).pathname.startsWith("/v1/")) {
      seen.apiAuthorization.push(req.headers()["authorization"] ?? "");
    }
  });
  // The page's own record of what its Content-Security-Policy refused
  // (Chromium also logs each as a console error).
  await page.evaluateOnNewDocument(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });

  await page.goto(args.base + args.path, { waitUntil: "networkidle0" });
  await page.waitForSelector(".opblock");
  seen.operations = await page.$$eval(".opblock", (els) =>
    els.map((el) => ({
      id: el.id,
      method: el.querySelector(".opblock-summary-method")?.textContent.trim() ?? "",
      path: el.querySelector(".opblock-summary-path")?.textContent.trim() ?? "",
    })),
  );

  // Authorize with the caller key, as a person would.
  await page.click(".btn.authorize");
  await page.type("#auth-bearer-value", args.key);
  await page.click(".auth-btn-wrapper .btn.authorize");
  await page.waitForSelector('.auth-btn-wrapper button[aria-label="Remove authorization"]');
  await page.click(".auth-btn-wrapper .btn-done");
  await page.waitForSelector(".modal-ux", { hidden: true });

  seen.otp = await tryOperation(page, "AccessService_GenerateOTP", async (op) => {
    const body = await op.$("textarea.body-param__text");
    // Replace the example body with the test's, keystroke by keystroke.
    await body.click();
    await page.keyboard.down("Control");
    await page.keyboard.press("KeyA");
    await page.keyboard.up("Control");
    await page.keyboard.press("Backspace");
    await body.type(args["otp-body"]);
  });
  seen.notFound = await tryOperation(page, "AccessService_GetServiceStatus", async (op) => {
    await (await op.$('input[placeholder="service_id"]')).type(args["service-id"]);
  });

  for (const id of ["AccessService_GenerateOTP", "AccessService_GetServiceStatus"]) {
    seen.responseCodes[id] = await page.$$eval(
      `#operations-AccessService-${id} table.responses-table:not(.live-responses-table) tr.response td.response-col_status`,
      (tds) => tds.map((td) => td.textContent.trim()),
    );
  }
} catch (err) {
  seen.error = String(err?.stack ?? err);
} finally {
  await page.screenshot({ path: args.screenshot, fullPage: true }).catch((err) => {
    seen.error ||= `screenshot: ${err}`;
  });
  seen.cspViolations = await page.evaluate(() => window.__cspViolations ?? []).catch(() => []);
  await browser.close();
}
console.log(JSON.stringify(seen));

// tryOperation opens the operation, presses "Try it out", lets fill set its
// inputs, presses "Execute" and returns the live response as shown: the
// status and the body text.
async function tryOperation(page, operationId, fill) {
  const sel = `#operations-AccessService-${operationId}`;
  await page.click(`${sel} .opblock-summary-control`);
  await page.waitForSelector(`${sel} .try-out__btn`);
  await page.click(`${sel} .try-out__btn`);
  const op = await page.waitForSelector(sel);
  await fill(op);
  await page.click(`${sel} .btn.execute`);
  const live = `${sel} .live-responses-table`;
  await page.waitForSelector(`${live} .response .response-col_status`);
  return page.$eval(live, (el) => ({
    status: el.querySelector(".response .response-col_status")?.textContent.trim() ?? "",
    body: el.querySelector(".response .response-col_description pre")?.textContent ?? "",
  }));
}
