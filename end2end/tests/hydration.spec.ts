import { test, expect, createWorkspace, hydrated, openWorkspace, uid, ADMIN_KEY, signIn, watchConsole } from './fixtures';

test('the sign-in page is server rendered and hydrates without console errors', async ({ page, consoleErrors }) => {
  const response = await page.request.get('/signin');
  expect(response.status()).toBe(200);
  const html = await response.text();
  expect(html).toContain('name="api_key"');
  expect(html).toContain('action="/api/session"');

  await page.goto('/signin');
  await expect(page).toHaveTitle('quota-alert');
  await hydrated(page);
  expect(consoleErrors).toEqual([]);
});

test('the workspace and the dashboard hydrate without console errors', async ({ page, consoleErrors }) => {
  const id = uid('hydrate');
  const key = await createWorkspace(page.request, id);
  await openWorkspace(page, key);
  await expect(page.getByTestId('meter')).toHaveCount(4);

  // Client-side navigation to the dashboard and back.
  await page.getByRole('link', { name: 'Dashboard' }).click();
  await expect(page).toHaveURL(/\/dashboard$/);
  await expect(page.getByTestId('workspace-card')).toHaveCount(1);
  await page.reload();
  await hydrated(page);
  await page.getByRole('link', { name: 'Conversation', exact: true }).click();
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'connected');
  expect(consoleErrors).toEqual([]);
});

test('an unknown page answers 404 with a way back', async ({ request }) => {
  // (Not opened in the browser: Chromium logs every 404 document as a console error.)
  const response = await request.get('/no-such-page', { headers: { accept: 'text/html' } });
  expect(response.status()).toBe(404);
  expect(await response.text()).toContain('Back to quota-alert');
});

test('the content security policy lets the app run and refuses any other script', async ({ page }) => {
  const errors = watchConsole(page);
  const id = uid('csp');
  const key = await createWorkspace(page.request, id);
  // The app itself, under its policy: hydrated, WASM running, WebSocket up.
  await openWorkspace(page, key);
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'connected');
  await expect(page.getByTestId('meter')).toHaveCount(4);
  expect(errors, 'the app breaks none of its own rules').toEqual([]);

  const response = await page.request.get('/');
  const policy = response.headers()['content-security-policy'] ?? '';
  expect(policy).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9_-]{16,}' 'wasm-unsafe-eval'/);
  expect(policy).toContain("frame-ancestors 'none'");

  // A script without the nonce (what an injection would add) never runs.
  const violated = await page.evaluate(
    () =>
      new Promise<string>((resolve) => {
        document.addEventListener('securitypolicyviolation', (e) => resolve(e.effectiveDirective), { once: true });
        const script = document.createElement('script');
        script.textContent = 'window.__injected = true';
        document.body.appendChild(script);
      }),
  );
  expect(violated).toBe('script-src-elem');
  expect(await page.evaluate(() => (window as unknown as { __injected?: boolean }).__injected)).toBeUndefined();
  expect(errors.length, 'only the refused script is reported').toBe(1);
  expect(errors[0]).toContain('Content Security Policy');
});
