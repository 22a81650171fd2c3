import { test, expect, createWorkspace, hydrated, signIn, uid, ADMIN_KEY } from './fixtures';

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

test('the admin creates a workspace, sees its key once, edits its settings, rotates its key and reads the audit trail', async ({
  page,
  context,
  request,
  consoleErrors,
}) => {
  test.setTimeout(60_000);
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  const id = uid('admin-ui');

  await signIn(page, ADMIN_KEY);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Workspaces' }).click();
  await expect(page).toHaveURL(/\/admin$/);
  await expect(page.getByRole('heading', { name: 'Workspaces', level: 1 })).toBeVisible();

  // Create: the key is shown once, with a copy button.
  const create = page.getByRole('form', { name: 'Create workspace' });
  await create.getByLabel('Workspace id').fill(id);
  await create.getByRole('button', { name: 'Create workspace' }).click();
  const reveal = page.getByTestId('key-reveal');
  await expect(reveal).toContainText('you will not see it again');
  const key = await reveal.getByTestId('new-key').inputValue();
  expect(key).toMatch(/^qa_/);
  await reveal.getByRole('button', { name: 'Copy key' }).click();
  await expect(reveal.getByRole('button', { name: 'Copied' })).toBeVisible();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(key);
  expect((await request.get('/api/quota/status', { headers: bearer(key) })).status()).toBe(200);
  await expect(page.getByTestId('workspace-table').locator(`tr[data-workspace="${id}"]`)).toContainText('Active');
  await reveal.getByRole('button', { name: /I have stored it/ }).click();
  await expect(page.getByTestId('key-reveal')).toHaveCount(0);

  // The new workspace is open for editing; a bad time zone is refused beside its field.
  await expect(page).toHaveURL(new RegExp(`/admin\\?workspace=${id}$`));
  const settings = page.getByRole('form', { name: 'Limits and settings' });
  // A text input with suggestions (a datalist): a combobox to assistive tech.
  const zone = settings.getByLabel('Time zone', { exact: true });
  await zone.fill('Mars/Olympus');
  await settings.getByRole('button', { name: 'Save settings' }).click();
  await expect(zone).toHaveAttribute('aria-invalid', 'true');
  await expect(zone).toHaveAccessibleDescription(/"Mars\/Olympus" is not an IANA time zone name/);
  await expect(settings.getByTestId('settings-error')).toContainText('time_zone');

  // A hard daily budget and a gpt-4o limit, saved.
  await zone.fill('Asia/Tokyo');
  await settings.getByRole('button', { name: 'Add budget' }).click();
  const budget = settings.getByRole('group', { name: 'Budget 1' });
  await budget.getByLabel('Period').selectOption('day');
  await budget.getByLabel('Amount (USD)').fill('5');
  await budget.getByLabel('Kind').selectOption('hard');
  await settings.getByRole('button', { name: 'Add model' }).click();
  const model = settings.getByRole('group', { name: 'Model 1' });
  await model.getByLabel('Model or family').fill('gpt-4o');
  await model.getByLabel('Tokens per minute').fill('1000');
  await model.getByLabel('Daily budget (USD)').fill('2.5');
  await settings.getByRole('button', { name: 'Save settings' }).click();
  await expect(settings.getByTestId('settings-saved')).toHaveText(
    'Saved: 1 budget, 1 model rule, 0 user rules; time zone Asia/Tokyo.',
  );
  await expect(zone).not.toHaveAttribute('aria-invalid', 'true');
  const stored = await (await request.get(`/api/admin/workspaces/${id}`, { headers: bearer(ADMIN_KEY) })).json();
  expect(stored.settings.budgets).toEqual([{ period: 'day', amount_usd: 5, kind: 'hard' }]);
  expect(stored.settings.model_limits).toEqual({ 'gpt-4o': { tokens_per_minute: 1000, budget_usd: 2.5 } });

  // After a reload: the saved values, and the key nowhere.
  await page.reload();
  await hydrated(page);
  await expect(zone).toHaveValue('Asia/Tokyo');
  await expect(budget.getByLabel('Period')).toHaveValue('day');
  await expect(budget.getByLabel('Amount (USD)')).toHaveValue('5');
  await expect(budget.getByLabel('Kind')).toHaveValue('hard');
  await expect(model.getByLabel('Model or family')).toHaveValue('gpt-4o');
  await expect(model.getByLabel('Tokens per minute')).toHaveValue('1000');
  await expect(model.getByLabel('Daily budget (USD)')).toHaveValue('2.5');
  await expect(page.getByTestId('key-reveal')).toHaveCount(0);
  expect(await page.content()).not.toContain(key);

  // Rotate: a new key, shown once; the old one stops working.
  const panel = page.getByTestId('workspace-panel');
  await panel.getByRole('button', { name: 'Rotate key' }).click();
  const rotated = panel.getByTestId('key-reveal');
  await expect(rotated).toContainText('you will not see it again');
  const newKey = await rotated.getByTestId('new-key').inputValue();
  expect(newKey).toMatch(/^qa_/);
  expect(newKey).not.toBe(key);
  expect((await request.get('/api/quota/status', { headers: bearer(key) })).status()).toBe(401);
  expect((await request.get('/api/quota/status', { headers: bearer(newKey) })).status()).toBe(200);

  // The audit trail, this workspace's only, newest first: rotated, changed, created
  // (the refused time zone changed nothing, so it is not there).
  const audit = page.getByRole('region', { name: 'Audit trail' });
  await audit.getByLabel('Show').selectOption(id);
  const rows = audit.locator('tbody tr');
  await expect(rows).toHaveCount(3);
  await expect(rows.nth(0)).toHaveAttribute('data-action', 'rotate_key');
  await expect(rows.nth(0)).toContainText('Key rotated');
  await expect(rows.nth(1)).toHaveAttribute('data-action', 'update_settings');
  await expect(rows.nth(1)).toContainText('Asia/Tokyo');
  await expect(rows.nth(2)).toHaveAttribute('data-action', 'create_workspace');
  for (const row of await rows.all()) {
    await expect(row).toHaveAttribute('data-workspace', id);
    await expect(row).toContainText('Admin');
    await expect(row.locator('time')).toContainText(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
  }
});

test('revoking keys asks first, then every key of the workspace stops working', async ({ page, request, consoleErrors }) => {
  const id = uid('admin-revoke');
  const key = await createWorkspace(request, id);
  await signIn(page, ADMIN_KEY);
  await page.goto(`/admin?workspace=${id}`);
  await hydrated(page);
  const panel = page.getByTestId('workspace-panel');
  await panel.getByRole('button', { name: 'Revoke keys…' }).click();
  const confirm = panel.getByRole('alertdialog');
  await expect(confirm).toContainText(`Revoke every key of ${id}?`);
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await expect(panel.getByRole('alertdialog')).toHaveCount(0);
  expect((await request.get('/api/quota/status', { headers: bearer(key) })).status()).toBe(200);

  await panel.getByRole('button', { name: 'Revoke keys…' }).click();
  await panel.getByRole('alertdialog').getByRole('button', { name: 'Revoke every key' }).click();
  await expect(panel.getByRole('status').filter({ hasText: 'is revoked' })).toBeVisible();
  await expect(page.getByTestId('workspace-table').locator(`tr[data-workspace="${id}"]`)).toContainText('Revoked');
  expect((await request.get('/api/quota/status', { headers: bearer(key) })).status()).toBe(401);
});

test('a workspace session is refused the admin page', async ({ page, request }) => {
  const key = await createWorkspace(request, uid('admin-not'));
  await signIn(page, key);
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Workspaces' })).toHaveCount(0);
  const response = await page.goto('/admin');
  expect(response?.status()).toBe(403);
  await expect(page.getByTestId('admin-only')).toContainText('This page is for the admin');
  await page.context().clearCookies();
  await page.goto('/admin');
  await expect(page).toHaveURL(/\/signin$/);
});
