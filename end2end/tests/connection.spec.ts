import { test as base, expect, type WebSocket } from '@playwright/test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, createWorkspace, openWorkspace, record, signIn, SUCCESS, uid, watchConsole } from './fixtures';
import { TestServer } from './server';

test('while the WebSocket cannot connect, the page polls the status and still shows changes', async ({
  page,
  consoleErrors,
}) => {
  test.setTimeout(45_000);
  const id = uid('poll');
  const key = await createWorkspace(page.request, id, { requests_per_minute: 10 });
  // A network that refuses WebSockets (some proxies do): every attempt is closed at once.
  let attempts = 0;
  await page.routeWebSocket(/\/api\/quota\/ws/, (ws) => {
    attempts += 1;
    ws.close({ code: 1011, reason: 'blocked by the test' });
  });
  await signIn(page, key);
  const connection = page.getByTestId('connection');
  await expect(connection).toHaveAttribute('data-state', /reconnecting|offline/);

  await record(page.request, key, SUCCESS, 8);
  // Within a poll interval or two, the WARNING arrives through `get_status`.
  await expect(page.getByTestId('quota-banner')).toHaveAttribute('data-status', 'WARNING', { timeout: 15_000 });
  await expect(page.locator('[data-testid="toast"][data-status="WARNING"]')).toHaveCount(1);
  await expect(connection).toContainText(/status checked \d+s ago/);
  await expect(connection).not.toHaveAttribute('data-state', 'connected');

  // Backoff: attempts keep coming, but spaced out (not a tight loop).
  const seen = attempts;
  expect(seen).toBeGreaterThanOrEqual(2);
  expect(seen).toBeLessThan(12);
});

test('going offline shows "offline" at once, and the page catches up when the network returns', async ({
  page,
  context,
  request,
  consoleErrors,
}) => {
  const id = uid('offline');
  const key = await createWorkspace(request, id, { requests_per_minute: 10 });
  const sockets: WebSocket[] = [];
  page.on('websocket', (ws) => sockets.push(ws));
  await openWorkspace(page, key);
  const connection = page.getByTestId('connection');

  await context.setOffline(true);
  await expect(connection).toHaveAttribute('data-state', 'offline');
  await expect(connection).toContainText('Offline');
  await expect(connection).toContainText('showing the last known status');
  await expect(page.getByTestId('retry-now')).toBeVisible();
  // Offline emulation leaves open WebSockets alone (they go on delivering):
  // the page must close its own, or the change below would still reach it.
  await expect.poll(() => sockets.length > 0 && sockets.every((ws) => ws.isClosed())).toBe(true);

  // The workspace changes while this browser is offline: the server has it,
  // but with no socket open (none opened since) and no requests while
  // offline, the page cannot; the lines after prove it does once online.
  const changed = await record(request, key, SUCCESS, 8);
  expect(changed.status).toBe('WARNING');
  expect(sockets.filter((ws) => !ws.isClosed())).toHaveLength(0);
  await expect(page.getByTestId('quota-banner')).toHaveCount(0);

  await context.setOffline(false);
  await expect(connection).toHaveAttribute('data-state', 'connected', { timeout: 10_000 });
  await expect(page.getByTestId('quota-banner')).toHaveAttribute('data-status', 'WARNING');
  await expect(page.locator('[data-testid="toast"][data-status="WARNING"]')).toHaveCount(1);
});

// A server with a one-second heartbeat: a client that did not answer pings
// would be dropped after three seconds.
const heartbeat = base.extend<{}, { server: TestServer }>({
  server: [
    async ({}, use) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quota-alert-hb-'));
      const config = path.join(dir, 'Leptos.toml');
      fs.writeFileSync(config, '[websocket]\nheartbeat_s = 1\n');
      const server = await TestServer.start({ QUOTA_CONFIG_FILE: config });
      await use(server);
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
    { scope: 'worker' },
  ],
});

heartbeat('the page answers heartbeats, so the server keeps its connection', async ({ browser, server }) => {
  const context = await browser.newContext({ baseURL: server.url });
  try {
    const page = await context.newPage();
    const errors = watchConsole(page);
    let sockets = 0;
    let closed = 0;
    let pongs = 0;
    page.on('websocket', (ws) => {
      sockets += 1;
      ws.on('close', () => (closed += 1));
      ws.on('framesent', (frame) => {
        if (String(frame.payload).includes('"pong"')) pongs += 1;
      });
    });
    const key = await createWorkspace(context.request, 'heartbeat', {}, server.adminKey);
    await openWorkspace(page, key);
    // Five heartbeats answered: five seconds, past the three after which a
    // socket that did not answer would have been dropped.
    await expect.poll(() => pongs, { timeout: 15_000 }).toBeGreaterThanOrEqual(5);
    // Never dropped meanwhile: the page leaves "connected" only when its
    // socket ends, and a reconnect would be a second socket.
    expect(closed).toBe(0);
    expect(sockets).toBe(1);
    await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'connected');
    expect(errors).toEqual([]);
  } finally {
    await context.close();
  }
});
