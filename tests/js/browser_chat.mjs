// Drives the example page in headless Chromium: types a prompt, sends it, waits for the
// answer to finish, prints what the page shows as JSON and keeps a screenshot.
// With "stop" as a fifth argument, it presses Stop as soon as the answer's reasoning shows.
// Usage: node browser_chat.mjs EXAMPLE_DIR PAGE_URL PROMPT SCREENSHOT_PATH [stop]
import { createRequire } from "node:module";

const [exampleDir, pageUrl, prompt, screenshot, mode] = process.argv.slice(2);
const require = createRequire(`${exampleDir}/package.json`);
const { chromium } = require("playwright-core");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const page = await browser.newPage();
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  await page.goto(pageUrl);
  try {
    await page.waitForSelector("#prompt", { timeout: 15000 });
  } catch (error) {
    throw new Error(`the page did not render: ${consoleErrors.join("; ") || error}`);
  }
  await page.fill("#prompt", prompt);
  await page.click("#send");
  if (mode === "stop") {
    await page.waitForSelector('[data-role="assistant"] .reasoning', { timeout: 60000 });
    await page.click("#stop");
  }
  // Done: an answer is shown and the chat is ready again (or failed).
  await page.waitForFunction(
    () => {
      const status = document.querySelector("#chat").dataset.status;
      const answered = document.querySelector('[data-role="assistant"]') !== null;
      return status === "error" || (status === "ready" && answered);
    },
    null,
    { timeout: 60000 },
  );
  const result = await page.evaluate(() => ({
    status: document.querySelector("#chat").dataset.status,
    error: document.querySelector("#error")?.textContent ?? null,
    assistant: [...document.querySelectorAll('[data-role="assistant"]')].map((m) => ({
      text: [...m.querySelectorAll(".text")].map((t) => t.textContent).join(""),
      reasoning: [...m.querySelectorAll(".reasoning")].map((t) => t.textContent),
      tools: [...m.querySelectorAll(".tool")].map((t) => ({ state: t.dataset.state, text: t.textContent })),
    })),
  }));
  await page.screenshot({ path: screenshot, fullPage: true });
  process.stdout.write(JSON.stringify({ ...result, consoleErrors }));
} finally {
  await browser.close();
}
