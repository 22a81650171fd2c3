import { test as base, expect, Page } from '@playwright/test';

// Every page under test fails the test on a console error or an uncaught
// exception: a hydration mismatch or a panic in the WASM shows up there.
export const test = base.extend<{ consoleErrors: string[] }>({
  consoleErrors: async ({ page }, use) => {
    const errors: string[] = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    page.on('pageerror', (err) => errors.push(err.message));
    await use(errors);
    expect(errors, 'console errors').toEqual([]);
  },
});
export { expect };

export const ADMIN_KEY = process.env.QUOTA_ADMIN_RESET_KEY ?? '';

export async function createWorkspace(page: Page, id: string, limits: object = {}): Promise<string> {
  const res = await page.request.post('/api/admin/workspaces', {
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
    data: { id, limits },
  });
  expect(res.status(), await res.text()).toBe(201);
  return (await res.json()).api_key;
}

export async function hydrated(page: Page) {
  await expect(page.locator('main[data-hydrated="true"]')).toBeVisible();
}
