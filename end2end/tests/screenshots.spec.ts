// Not a check: pictures of the main screens in light and dark, wide and phone,
// for a person to look at. Runs only when QUOTA_SCREENSHOTS names a folder.
import { test, expect, createWorkspace, openWorkspace, record, rateLimited, SUCCESS, signIn, uid, ADMIN_KEY } from './fixtures';
import path from 'node:path';

const DIR = process.env.QUOTA_SCREENSHOTS ?? '';
test.skip(!DIR, 'set QUOTA_SCREENSHOTS=<folder> to take screenshots');

const VIEWS = [
  { name: 'wide-light', viewport: { width: 1366, height: 900 }, colorScheme: 'light' as const },
  { name: 'wide-dark', viewport: { width: 1366, height: 900 }, colorScheme: 'dark' as const },
  { name: 'phone-light', viewport: { width: 390, height: 844 }, colorScheme: 'light' as const },
  { name: 'phone-dark', viewport: { width: 390, height: 844 }, colorScheme: 'dark' as const },
];

test('screenshots', async ({ browser, request }) => {
  test.setTimeout(180_000);
  const id = uid('shots');
  const key = await createWorkspace(request, id, { requests_per_minute: 5, requests_per_day: 8 });
  for (const view of VIEWS) {
    const context = await browser.newContext({ viewport: view.viewport, colorScheme: view.colorScheme });
    const page = await context.newPage();
    await page.goto('/signin?error=invalid_key');
    await page.screenshot({ path: path.join(DIR, `signin-${view.name}.png`), fullPage: true });
    await openWorkspace(page, key);
    await page.screenshot({ path: path.join(DIR, `workspace-normal-${view.name}.png`), fullPage: true });
    await context.close();
  }
  await record(request, key, SUCCESS, 4);
  await record(request, key, rateLimited(40));
  for (const view of VIEWS) {
    const context = await browser.newContext({ viewport: view.viewport, colorScheme: view.colorScheme });
    const page = await context.newPage();
    await openWorkspace(page, key);
    await page.getByTestId('composer').fill('How do I batch requests?');
    await page.screenshot({ path: path.join(DIR, `workspace-limited-${view.name}.png`), fullPage: true });
    await signIn(page, ADMIN_KEY);
    await page.screenshot({ path: path.join(DIR, `dashboard-${view.name}.png`) });
    await page
      .locator(`[data-testid="workspace-card"][data-workspace="${id}"]`)
      .screenshot({ path: path.join(DIR, `dashboard-card-${view.name}.png`) });
    await signIn(page, key);
    await page.goto('/dashboard');
    await page.screenshot({ path: path.join(DIR, `dashboard-own-${view.name}.png`), fullPage: true });
    await context.close();
  }
});

test('screenshots of toasts', async ({ browser, request }) => {
  test.setTimeout(60_000);
  const id = uid('toasts');
  const key = await createWorkspace(request, id, { requests_per_minute: 5 });
  for (const view of [VIEWS[0], VIEWS[3]]) {
    const context = await browser.newContext({ viewport: view.viewport, colorScheme: view.colorScheme });
    const page = await context.newPage();
    await openWorkspace(page, key);
    await record(request, key, SUCCESS, 4);
    await expect(page.getByTestId('toast')).toHaveCount(1);
    await record(request, key, rateLimited(30));
    await expect(page.getByTestId('toast')).toHaveCount(2);
    // The entrance animations shown finished: Playwright fast-forwards finite
    // animations to their end for the screenshot, no waiting them out.
    await page.screenshot({ path: path.join(DIR, `toasts-${view.name}.png`), animations: 'disabled' });
    await context.close();
    const reset = await request.post('/api/quota/reset', {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
      data: { workspace_id: id },
    });
    expect(reset.status()).toBe(200);
  }
});
