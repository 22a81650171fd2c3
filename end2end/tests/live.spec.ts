import {
  test,
  expect,
  createWorkspace,
  openWorkspace,
  record,
  rateLimited,
  SUCCESS,
  uid,
  ADMIN_KEY,
} from './fixtures';

test('usage over the warning share, recorded through REST, brings a toast and a WARNING banner without a reload', async ({
  page,
  consoleErrors,
}) => {
  const id = uid('warn');
  const key = await createWorkspace(page.request, id, { requests_per_minute: 10 });
  await openWorkspace(page, key);
  await expect(page.getByTestId('quota-banner')).toHaveCount(0);
  await expect(page.getByTestId('status-badge')).toHaveAttribute('data-status', 'NORMAL');
  // Anything set on the window survives only if the page is never reloaded.
  await page.evaluate(() => ((window as any).__sameDocument = true));

  // 8 of 10 requests per minute is 80%: WARNING.
  await record(page.request, key, SUCCESS, 8);

  const banner = page.getByTestId('quota-banner');
  await expect(banner).toHaveAttribute('data-status', 'WARNING');
  await expect(banner).toContainText('Requests per minute at 80%');
  await expect(banner).toContainText('Sending still works');
  await expect(banner.getByTestId('countdown')).toHaveText(/^\d+s$/);

  const toast = page.getByTestId('toast');
  await expect(toast).toHaveCount(1);
  await expect(toast).toHaveAttribute('data-level', 'warning');
  await expect(toast).toHaveAttribute('data-status', 'WARNING');
  await expect(toast).toHaveAttribute('role', 'status');
  await expect(toast).toHaveAttribute('aria-live', 'polite');
  await expect(toast).toContainText('Warning');

  await expect(page.getByTestId('status-badge')).toHaveAttribute('data-status', 'WARNING');
  await expect(page.locator('[data-testid="meter"][data-window="requests-per-minute"]')).toContainText('8 / 10');
  // A background tab tells it in its title.
  await expect(page).toHaveTitle(`Warning · ${id} — quota-alert`);
  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);

  // More usage within WARNING is no new change: still one toast.
  await record(page.request, key, { success: true, tokens_used: 50 });
  await expect(page.locator('[data-testid="meter"][data-window="requests-per-minute"]')).toContainText('9 / 10');
  await expect(page.getByTestId('quota-banner')).toContainText('Requests per minute at 90%');
  await expect(toast).toHaveCount(1);
});

test('the banner is in the server-rendered page: no flash of NORMAL before the WASM loads', async ({
  page,
  browser,
  consoleErrors,
}) => {
  const id = uid('ssr');
  const key = await createWorkspace(page.request, id);
  await openWorkspace(page, key);
  await record(page.request, key, rateLimited(60));
  await expect(page.getByTestId('quota-banner')).toHaveAttribute('data-status', 'RATE_LIMITED');

  // The same session in a browser that runs no script at all.
  const noScript = await browser.newContext({ javaScriptEnabled: false });
  try {
    await noScript.addCookies(await page.context().cookies());
    const plain = await noScript.newPage();
    await plain.goto(page.url());
    const banner = plain.getByTestId('quota-banner');
    await expect(banner).toHaveAttribute('data-status', 'RATE_LIMITED');
    await expect(banner.getByTestId('countdown')).toHaveText(/^(\d+s|1m 00s)$/);
    await expect(plain.getByTestId('send')).toBeDisabled();
    await expect(plain.getByTestId('send-hint')).toContainText('Sending is paused: rate limited');
    await expect(plain.locator('main')).toHaveAttribute('data-hydrated', 'false');
  } finally {
    await noScript.close();
  }
});

test('toasts: errors stay until dismissed by keyboard, info goes by itself, stacked and never repeated', async ({
  page,
  consoleErrors,
}) => {
  test.setTimeout(45_000);
  const id = uid('toasts');
  const key = await createWorkspace(page.request, id, { requests_per_minute: 5 });
  await openWorkspace(page, key);

  await record(page.request, key, SUCCESS, 4); // WARNING
  await record(page.request, key, rateLimited(120)); // RATE_LIMITED
  const toasts = page.getByTestId('toast');
  await expect(toasts).toHaveCount(2);
  const error = page.locator('[data-testid="toast"][data-level="error"]');
  await expect(error).toHaveAttribute('role', 'alert');
  await expect(error).toHaveAttribute('aria-live', 'assertive');
  await expect(error).toContainText('Rate limited');
  await expect(error).toContainText(/allowed again in \d/);

  // Dismissed with the keyboard: Escape on the focused toast.
  await error.focus();
  await page.keyboard.press('Escape');
  await expect(error).toHaveCount(0);

  // The admin resets the workspace: back to NORMAL, an info toast that leaves by itself.
  const reset = await page.request.post('/api/quota/reset', {
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
    data: { workspace_id: id },
  });
  expect(reset.status()).toBe(200);
  const info = page.locator('[data-testid="toast"][data-level="info"]');
  await expect(info).toHaveCount(1);
  await expect(info).toContainText('Back to normal');
  await expect(page.getByTestId('quota-banner')).toHaveCount(0);
  await expect(info).toHaveCount(0, { timeout: 12_000 });
  // The warning toast left by itself as well.
  await expect(toasts).toHaveCount(0, { timeout: 12_000 });

  // A dismiss button works from the keyboard too (Tab to it, Enter).
  await record(page.request, key, rateLimited(120));
  await expect(error).toHaveCount(1);
  await error.getByTestId('toast-dismiss').focus();
  await page.keyboard.press('Enter');
  await expect(error).toHaveCount(0);
});

test('toasts do not move when the person prefers reduced motion', async ({ page, consoleErrors }) => {
  const id = uid('motion');
  const key = await createWorkspace(page.request, id);
  await page.emulateMedia({ reducedMotion: 'reduce' });
  await openWorkspace(page, key);
  await record(page.request, key, rateLimited(60));
  const toast = page.getByTestId('toast');
  await expect(toast).toHaveCount(1);
  expect(await toast.evaluate((el) => getComputedStyle(el).animationName)).toBe('none');

  await page.emulateMedia({ reducedMotion: 'no-preference' });
  await record(page.request, key, { success: true, tokens_used: 1 }); // no new change: no new toast
  await expect(toast).toHaveCount(1);
  expect(await toast.evaluate((el) => getComputedStyle(el).animationName)).toBe('toast-in');
});

test('tokens reserved for a call in flight show on the meter beside the used ones, and go when it settles', async ({
  page,
  consoleErrors,
}) => {
  const id = uid('held');
  const key = await createWorkspace(page.request, id, { tokens_per_minute: 1000 });
  await openWorkspace(page, key);
  const meter = page.locator('[data-testid="meter"][data-window="tokens-per-minute"]');
  await expect(meter.getByTestId('meter-reserved')).toBeHidden();

  // An app that calls OpenAI itself reserves first…
  const res = await page.request.post('/api/quota/reserve', {
    headers: { authorization: `Bearer ${key}` },
    data: { tokens: 300, model: 'gpt-4o' },
  });
  expect(res.status(), await res.text()).toBe(200);
  const { reservation_id } = await res.json();
  await expect(meter.getByTestId('meter-reserved')).toBeVisible();
  await expect(meter.getByTestId('meter-reserved')).toContainText('300 reserved');
  await expect(meter.getByTestId('meter-held')).toHaveAttribute('width', '30.0');
  await expect(meter).toContainText('0 / 1,000');

  // …and settles to what the call really used.
  await record(page.request, key, { success: true, tokens_used: 120, reservation_id });
  await expect(meter).toContainText('120 / 1,000');
  await expect(meter.getByTestId('meter-reserved')).toBeHidden();
  await expect(meter.getByTestId('meter-held')).toHaveAttribute('width', '0.0');
});
