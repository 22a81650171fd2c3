import { test, expect } from '@playwright/test';
import { createWorkspace, openWorkspace, record, SUCCESS, watchConsole } from './fixtures';
import { TestServer, isNetworkNoise } from './server';

// This test owns its server (own port, database and admin key) so it can kill
// it without disturbing the shared one.
test('a server restart shows "reconnecting", then recovers with the current status, still signed in', async ({ browser }) => {
  test.setTimeout(90_000);
  const server = await TestServer.start();
  const context = await browser.newContext({ baseURL: server.url });
  try {
    const page = await context.newPage();
    const errors = watchConsole(page);
    const key = await createWorkspace(context.request, 'restart', { requests_per_minute: 5 }, server.adminKey);
    await openWorkspace(page, key);
    await expect(page.getByTestId('quota-banner')).toHaveCount(0);

    // The server dies.
    await server.kill();
    const connection = page.getByTestId('connection');
    await expect(connection).toHaveAttribute('data-state', 'reconnecting');
    await expect(connection).toContainText('Reconnecting');
    await expect(connection).toContainText(/next try in \d+s|trying now/);
    // The page stays readable with what it knew.
    await expect(page.getByTestId('status-badge')).toHaveAttribute('data-status', 'NORMAL');
    await expect(page.getByTestId('composer')).toBeVisible();

    // It comes back on the same port and database; usage is recorded before the
    // page has reconnected, so the page must resynchronise, not replay what it saw.
    await server.start();
    await record(context.request, key, SUCCESS, 4);

    // Sessions are stored with the rest of the state (src/service/sessions.rs),
    // so the cookie from before the restart still works: the page recovers
    // without signing in again.
    const probe = await context.request.get('/api/quota/status');
    expect(probe.status()).toBe(200);

    await expect(connection).toHaveAttribute('data-state', 'connected', { timeout: 20_000 });
    await expect(page.getByTestId('quota-banner')).toHaveAttribute('data-status', 'WARNING');
    await expect(page.getByTestId('status-badge')).toHaveAttribute('data-status', 'WARNING');
    await expect(page.locator('[data-testid="meter"][data-window="requests-per-minute"]')).toContainText('4 / 5');
    await expect(page.locator('[data-testid="toast"][data-status="WARNING"]')).toHaveCount(1);
    await expect(page.getByTestId('session-ended')).toHaveCount(0);

    // Chromium itself logs the refused connections while the server is away;
    // nothing else may appear.
    expect(errors.filter((e) => !isNetworkNoise(e))).toEqual([]);
  } finally {
    await context.close();
    await server.stop();
  }
});
