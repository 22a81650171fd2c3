import { test, expect, createWorkspace, hydrated, openWorkspace, signIn, uid, ADMIN_KEY } from './fixtures';

test('pages that need a session redirect to /signin on the server', async ({ request }) => {
  for (const path of ['/', '/dashboard']) {
    const res = await request.get(path, { maxRedirects: 0, headers: { accept: 'text/html' } });
    expect(res.status(), path).toBe(302);
    expect(res.headers()['location'], path).toBe('/signin');
  }
});

test('a wrong key is refused inline on the sign-in page', async ({ page, consoleErrors }) => {
  await page.goto('/signin');
  await hydrated(page);
  await page.fill('input[name="api_key"]', 'qa_this_is_not_a_key');
  await page.getByTestId('sign-in').click();
  await expect(page).toHaveURL(/\/signin\?error=invalid_key$/);
  await expect(page.getByTestId('signin-error')).toContainText('not valid');
  await expect(page.locator('input[name="api_key"]')).toHaveAttribute('aria-invalid', 'true');
  expect((await page.context().cookies()).some((c) => c.name === 'qa_session')).toBe(false);
});

test('a workspace key signs in with an HttpOnly, SameSite cookie; signing out clears it', async ({
  page,
  context,
  consoleErrors,
}) => {
  const id = uid('signin');
  const key = await createWorkspace(page.request, id);
  await openWorkspace(page, key);
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByTestId('workspace-id')).toHaveText(id);
  await expect(page.getByTestId('whoami')).toContainText(id);

  const cookie = (await context.cookies()).find((c) => c.name === 'qa_session');
  expect(cookie, 'session cookie').toBeDefined();
  expect(cookie?.httpOnly).toBe(true);
  expect(cookie?.sameSite).toBe('Lax');
  expect(await page.evaluate(() => document.cookie)).not.toContain('qa_session');
  // The key itself is never kept by the browser.
  expect(JSON.stringify(await context.storageState())).not.toContain(key);

  // The sign-in page knows who is signed in.
  await page.goto('/signin');
  await hydrated(page);
  await expect(page.getByTestId('signin-current')).toContainText(`workspace ${id}`);

  await page.goto('/');
  await hydrated(page);
  await page.getByTestId('sign-out').click();
  await expect(page).toHaveURL(/\/signin$/);
  expect((await context.cookies()).some((c) => c.name === 'qa_session')).toBe(false);
  const again = await page.request.get('/', { maxRedirects: 0, headers: { accept: 'text/html' } });
  expect(again.status()).toBe(302);
});

test('the admin key signs in to the dashboard of all workspaces', async ({ page, consoleErrors }) => {
  const a = uid('admin-a');
  const b = uid('admin-b');
  await createWorkspace(page.request, a);
  await createWorkspace(page.request, b);
  await signIn(page, ADMIN_KEY);
  await expect(page).toHaveURL(/\/dashboard$/);
  await expect(page.getByTestId('whoami')).toContainText('Admin');
  await expect(page.locator(`[data-testid="workspace-card"][data-workspace="${a}"]`)).toBeVisible();
  await expect(page.locator(`[data-testid="workspace-card"][data-workspace="${b}"]`)).toBeVisible();

  // The admin opens a workspace's conversation from its card.
  await page
    .locator(`[data-testid="workspace-card"][data-workspace="${a}"]`)
    .getByRole('link', { name: /Open conversation/ })
    .click();
  await expect(page).toHaveURL(new RegExp(`/\\?workspace=${a}$`));
  await hydrated(page);
  await expect(page.getByTestId('workspace-id')).toHaveText(a);
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'connected');

  // "/" without a workspace sends the admin to the dashboard.
  const res = await page.request.get('/', { maxRedirects: 0, headers: { accept: 'text/html' } });
  expect(res.status()).toBe(302);
  expect(res.headers()['location']).toBe('/dashboard');
});
