import { test, expect, createWorkspace, hydrated, openWorkspace, uid, ADMIN_KEY, signIn } from './fixtures';

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
