import { test, expect, createWorkspace, hydrated } from './fixtures';

test('the home page is server rendered and hydrates without console errors', async ({ page, consoleErrors }) => {
  // Server-rendered content is there before any script runs.
  const response = await page.request.get('/');
  expect(response.status()).toBe(200);
  expect(await response.text()).toContain('Watch a workspace live');

  await page.goto('/');
  await expect(page).toHaveTitle('quota-alert');
  await hydrated(page);
  expect(consoleErrors).toEqual([]);
});

test('a hydrated page shows a workspace status change live over the WebSocket', async ({ page, consoleErrors }) => {
  const id = `e2e-${Date.now()}`;
  const key = await createWorkspace(page, id, { requests_per_minute: 5 });
  await page.goto('/');
  await hydrated(page);

  await page.fill('input[name="api_key"]', key);
  await page.getByTestId('connect').click();
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'connected');
  await expect(page.getByTestId('status-badge')).toHaveAttribute('data-status', 'NORMAL');

  // 4 of 5 requests per minute: WARNING, pushed without a reload.
  for (let i = 0; i < 4; i++) {
    const res = await page.request.post('/api/quota/record', {
      headers: { authorization: `Bearer ${key}` },
      data: { success: true, tokens_used: 10 },
    });
    expect(res.status()).toBe(200);
  }
  await expect(page.getByTestId('status-badge')).toHaveAttribute('data-status', 'WARNING');
  await expect(page.getByTestId('status-message')).toContainText('Requests per minute');
  expect(consoleErrors).toEqual([]);
});

test('a wrong key is refused with a message, not a crash', async ({ page, consoleErrors }) => {
  await page.goto('/');
  await hydrated(page);
  await page.fill('input[name="api_key"]', 'qa_wrong');
  // The browser logs a failed WebSocket handshake itself; that one is expected.
  await page.getByTestId('connect').click();
  await expect(page.getByRole('alert')).toContainText('check the key');
  const unexpected = consoleErrors.filter((e) => !e.includes('WebSocket'));
  consoleErrors.length = 0;
  expect(unexpected).toEqual([]);
});
