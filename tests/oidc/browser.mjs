// Signs in through the provider's login page in headless Chromium, driven
// by playwright-core. Used as $BROWSER by kube-dc's login tests:
//   LOGIN_USER=alice LOGIN_PASSWORD=alice-pw node browser.mjs URL
import { chromium } from 'playwright-core';

const url = process.argv[process.argv.length - 1];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage();
  await page.goto(url);
  await page.fill('input[name=username]', process.env.LOGIN_USER || 'alice');
  await page.fill('input[name=password]', process.env.LOGIN_PASSWORD || 'alice-pw');
  await Promise.all([page.waitForURL(/\/callback/), page.click('#kc-login')]);
  const text = await page.textContent('body');
  process.stderr.write(`browser: ${text.trim().split('\n')[0]}\n`);
} finally {
  await browser.close();
}
