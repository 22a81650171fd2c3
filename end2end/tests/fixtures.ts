import { test as base, expect, APIRequestContext, Page } from '@playwright/test';

// Every page under test fails the test on a console error or an uncaught
// exception: a hydration mismatch or a panic in the WASM shows up there.
export const test = base.extend<{ consoleErrors: string[] }>({
  consoleErrors: async ({ page }, use) => {
    const errors = watchConsole(page);
    await use(errors);
    expect(errors, 'console errors').toEqual([]);
  },
});
export { expect };

export const ADMIN_KEY = process.env.QUOTA_ADMIN_RESET_KEY ?? '';

/** Collects console errors and uncaught exceptions of a page. */
export function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(msg.text());
  });
  page.on('pageerror', (err) => errors.push(err.message));
  return errors;
}

/** A workspace id no other test (or earlier run) uses. */
export function uid(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
}

export async function createWorkspace(
  request: APIRequestContext,
  id: string,
  limits: object = {},
  adminKey: string = ADMIN_KEY,
): Promise<string> {
  const res = await request.post('/api/admin/workspaces', {
    headers: { authorization: `Bearer ${adminKey}` },
    data: { id, limits },
  });
  expect(res.status(), await res.text()).toBe(201);
  return (await res.json()).api_key;
}

/** `POST /api/quota/record` with a workspace key; returns the new snapshot. */
export async function record(request: APIRequestContext, key: string, body: object, times = 1) {
  let snapshot: any = null;
  for (let i = 0; i < times; i++) {
    const res = await request.post('/api/quota/record', {
      headers: { authorization: `Bearer ${key}` },
      data: body,
    });
    expect(res.status(), await res.text()).toBe(200);
    snapshot = await res.json();
  }
  return snapshot;
}

export const SUCCESS = { success: true, tokens_used: 10 };

/** An upstream 429 that blocks the workspace for `seconds`. */
export function rateLimited(seconds: number) {
  return {
    success: false,
    error: { http_status: 429, code: 'rate_limit_exceeded', type: 'requests' },
    retry_after_s: seconds,
  };
}

export async function hydrated(page: Page) {
  await expect(page.locator('main[data-hydrated="true"]')).toBeVisible();
}

/** Signs in through the form, as a person would, and waits for the landing page. */
export async function signIn(page: Page, key: string) {
  await page.goto('/signin');
  await hydrated(page);
  await page.fill('input[name="api_key"]', key);
  await page.getByTestId('sign-in').click();
  await page.waitForURL((url) => url.pathname !== '/signin');
  await hydrated(page);
}

/** Signs in to a workspace and waits until its live connection is up. */
export async function openWorkspace(page: Page, key: string) {
  await signIn(page, key);
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'connected');
}
