import {
  test,
  expect,
  createWorkspace,
  openWorkspace,
  record,
  hydrated,
  signIn,
  uid,
  watchConsole,
  ADMIN_KEY,
} from './fixtures';
import { APIRequestContext } from '@playwright/test';

/** Gives workspace `id` one hard budget of $1 a day. */
async function dailyBudget(request: APIRequestContext, id: string) {
  const res = await request.patch(`/api/admin/workspaces/${id}`, {
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
    data: { budgets: [{ period: 'day', amount_usd: 1, kind: 'hard' }] },
  });
  expect(res.status(), await res.text()).toBe(200);
}

function call(user: string) {
  return { success: true, model: 'gpt-4o', user, cost_usd: 0.25, tokens_used: 100 };
}

test('the conversation page shows a spend meter per budget, live', async ({ page, consoleErrors }) => {
  const id = uid('spend');
  const key = await createWorkspace(page.request, id);
  await dailyBudget(page.request, id);
  await openWorkspace(page, key);
  // Anything set on the window survives only if the page is never reloaded.
  await page.evaluate(() => ((window as any).__sameDocument = true));

  const meter = page.getByRole('meter', { name: 'Daily budget (hard)' });
  await expect(meter).toHaveAttribute('aria-valuemax', '1.00');
  await expect(meter).toHaveAttribute('aria-valuenow', '0.00');
  const spend = page.getByTestId('spend-meter');
  await expect(spend.getByTestId('spend-figures')).toHaveText('$0.00 of $1.00');

  await record(page.request, key, call('alice'));
  await expect(spend.getByTestId('spend-figures')).toHaveText('$0.25 of $1.00');
  await expect(meter).toHaveAttribute('aria-valuenow', '0.25');
  await expect(meter).toHaveAttribute('aria-valuetext', '$0.25 of $1.00 spent (25%)');
  // Midnight after today, in the workspace's zone (UTC unless set), and counting down.
  await expect(spend.getByTestId('spend-reset')).toHaveText(/^resets [A-Z][a-z]{2} \d{1,2}, 00:00 UTC \(in \d/);

  await record(page.request, key, call('alice'));
  await expect(spend.getByTestId('spend-figures')).toHaveText('$0.50 of $1.00');
  await expect(meter).toHaveAttribute('aria-valuenow', '0.50');
  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);
});

test('a workspace without budgets shows no spend meter', async ({ page, consoleErrors }) => {
  const key = await createWorkspace(page.request, uid('nobudget'));
  await openWorkspace(page, key);
  await expect(page.getByTestId('meter')).toHaveCount(4);
  await expect(page.getByTestId('spend-meter')).toHaveCount(0);
});

test('the dashboard shows spend per day, the projection, models, users and CSV links, live', async ({
  page,
  browser,
  consoleErrors,
}) => {
  test.setTimeout(45_000);
  const id = uid('spend-dash');
  const key = await createWorkspace(page.request, id);
  await dailyBudget(page.request, id);
  const snapshot = await record(page.request, key, call('alice'));
  await record(page.request, key, call('alice'));
  const today: string = snapshot.budgets[0].first_day;
  expect(today).toMatch(/^\d{4}-\d\d-\d\d$/);

  await signIn(page, key);
  await page.goto('/dashboard');
  await hydrated(page);
  const card = page.locator(`[data-testid="workspace-card"][data-workspace="${id}"]`);
  const section = card.getByTestId('spend');
  await expect(section).toHaveAttribute('data-connection', 'connected');

  // The budget: its meter, one day of spend, and where it is heading.
  await expect(card.getByTestId('spend-figures')).toHaveText('$0.50 of $1.00');
  const chart = card.getByTestId('spend-chart');
  await expect(chart).toHaveAttribute('data-days', '1');
  await expect(chart.locator('svg rect.bar')).toHaveCount(1);
  await expect(chart).toContainText('$0.50 spent of $1.00');
  await expect(card.getByTestId('spend-projection')).toHaveText(
    /At this rate you will spend \$\d+\.\d\d by [A-Z][a-z]{2} \d{1,2}/,
  );

  // Today by model and by user.
  const byModel = card.locator('[data-testid="breakdown"][data-dimension="model"]');
  const byUser = card.locator('[data-testid="breakdown"][data-dimension="user"]');
  await expect(byModel.getByRole('heading')).toContainText('By model');
  const model = byModel.locator('[data-testid="breakdown-row"][data-name="gpt-4o"]');
  await expect(model).toContainText('gpt-4o');
  await expect(model.locator('td').nth(0)).toHaveText('2');
  await expect(model.locator('td').nth(1)).toHaveText('200');
  await expect(model.locator('td').nth(2)).toHaveText('$0.50');
  await expect(byUser.locator('[data-testid="breakdown-row"][data-name="alice"]')).toContainText('$0.50');

  // Export: per minute, per day of the budget's period, per day of the last 30 days.
  const link = (kind: string) => card.locator(`[data-testid="export-link"][data-kind="${kind}"]`);
  await expect(link('minute')).toHaveAttribute('href', '/api/quota/usage.csv?granularity=minute');
  await expect(link('period')).toHaveAttribute(
    'href',
    `/api/quota/usage.csv?granularity=day&from=${today}&to=${today}`,
  );
  await expect(link('days')).toHaveAttribute('href', '/api/quota/usage.csv?granularity=day');
  await expect(link('minute')).toHaveAttribute('download', `${id}-per-minute.csv`);
  // Each link downloads CSV with this session's cookie.
  for (const kind of ['minute', 'period', 'days']) {
    const href = await link(kind).getAttribute('href');
    const res = await page.request.get(href ?? '');
    expect(res.status(), `${kind}: ${await res.text()}`).toBe(200);
    expect(res.headers()['content-type']).toContain('text/csv');
  }
  const perDay = await (await page.request.get((await link('period').getAttribute('href')) ?? '')).text();
  expect(perDay).toContain(today);

  // Live, without waiting for the dashboard's refresh or reloading.
  await page.evaluate(() => ((window as any).__sameDocument = true));
  await record(page.request, key, call('bob'));
  await expect(byUser.locator('[data-testid="breakdown-row"][data-name="bob"]')).toContainText('$0.25');
  await expect(card.getByTestId('spend-figures')).toHaveText('$0.75 of $1.00');
  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);

  // The admin's view of the workspace: folded until opened, its links name the workspace.
  const context = await browser.newContext();
  try {
    const admin = await context.newPage();
    const errors = watchConsole(admin);
    await signIn(admin, ADMIN_KEY);
    const adminCard = admin.locator(`[data-testid="workspace-card"][data-workspace="${id}"]`);
    await expect(adminCard.getByTestId('spend')).toHaveCount(0);
    await adminCard.getByText('Spend, models and people').click();
    await expect(adminCard.getByTestId('spend')).toHaveAttribute('data-connection', 'connected');
    await expect(adminCard.getByTestId('spend-figures')).toHaveText('$0.75 of $1.00');
    await expect(
      adminCard.locator('[data-testid="export-link"][data-kind="minute"]'),
    ).toHaveAttribute('href', `/api/quota/usage.csv?granularity=minute&workspace_id=${id}`);
    const adminCsv = await admin.request.get(`/api/quota/usage.csv?granularity=day&workspace_id=${id}`);
    expect(adminCsv.status(), await adminCsv.text()).toBe(200);
    await expect(
      adminCard.locator('[data-testid="breakdown-row"][data-name="alice"]'),
    ).toContainText('$0.50');
    // Folding it closes its socket and drops the section.
    await adminCard.getByText('Spend, models and people').click();
    await expect(adminCard.getByTestId('spend')).toHaveCount(0);
    expect(errors, 'admin console errors').toEqual([]);
  } finally {
    await context.close();
  }
});
