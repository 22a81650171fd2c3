import { test, expect, createWorkspace, openWorkspace, record, SUCCESS, signIn, uid, ADMIN_KEY } from './fixtures';

test('the admin dashboard shows every workspace: status, windows, charts, alert history and predictions', async ({
  page,
  consoleErrors,
}) => {
  test.setTimeout(45_000);
  const busy = uid('dash-busy');
  const idle = uid('dash-idle');
  // 4 of 5 per minute is WARNING; 4 of 6 per day at this pace runs out within
  // minutes, long before the day window resets.
  const busyKey = await createWorkspace(page.request, busy, { requests_per_minute: 5, requests_per_day: 6 });
  await createWorkspace(page.request, idle);
  await record(page.request, busyKey, { success: true, tokens_used: 250 }, 4);

  await signIn(page, ADMIN_KEY);
  await expect(page).toHaveURL(/\/dashboard$/);
  const card = page.locator(`[data-testid="workspace-card"][data-workspace="${busy}"]`);
  const idleCard = page.locator(`[data-testid="workspace-card"][data-workspace="${idle}"]`);
  await expect(card).toHaveAttribute('data-status', 'WARNING');
  await expect(idleCard).toHaveAttribute('data-status', 'NORMAL');
  await expect(card.getByTestId('status-badge')).toContainText('Warning');

  // The four windows.
  await expect(card.getByTestId('meter')).toHaveCount(4);
  await expect(card.locator('[data-testid="meter"][data-window="requests-per-minute"]')).toContainText('4 / 5');
  await expect(card.locator('[data-testid="meter"][data-window="tokens-per-day"]')).toContainText('1,000 /');

  // Per-minute charts of the last hour, drawn as SVG: the current minute has a bar.
  const charts = card.getByTestId('usage-chart');
  await expect(charts).toHaveCount(2);
  await expect(charts.first().locator('svg rect.bar')).toHaveCount(1);
  await expect(charts.first().locator('svg title').first()).toContainText('Requests per minute');
  await expect(charts.first()).toContainText('Peak 4 requests');
  // A quiet workspace folds its charts and history away; they open on demand.
  await expect(idleCard.getByTestId('no-usage')).toBeHidden();
  await idleCard.getByText(/Usage of the last hour and alert history/).click();
  await expect(idleCard.getByTestId('no-usage')).toBeVisible();

  // Alert history: the transition with its time and reason.
  const entry = card.getByTestId('alert-entry').first();
  await expect(entry).toHaveAttribute('data-from', 'NORMAL');
  await expect(entry).toHaveAttribute('data-to', 'WARNING');
  await expect(entry).toContainText('Requests per minute at 80%');
  await expect(entry.locator('time')).toContainText(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
  await expect(idleCard.getByTestId('alert-history')).toContainText('no status changes yet');

  // Predictions: the day window runs out before it resets, and says so.
  const perDay = card.locator('[data-testid="prediction"][data-window="requests-per-day"]');
  await expect(perDay).toHaveAttribute('data-flagged', 'true');
  await expect(perDay).toContainText(/Runs out in ~.* before it resets/);
  const tokensPerDay = card.locator('[data-testid="prediction"][data-window="tokens-per-day"]');
  await expect(tokensPerDay).toHaveAttribute('data-flagged', 'false');
  await expect(idleCard.locator('[data-testid="prediction"]').first()).toContainText('Nothing used');

  // The admin can narrow the list.
  await page.getByLabel('Find a workspace').fill(busy);
  await expect(page.getByTestId('workspace-card')).toHaveCount(1);
  await page.getByLabel('Find a workspace').fill('');

  // It refreshes by itself.
  await record(page.request, busyKey, SUCCESS);
  await expect(card).toHaveAttribute('data-status', 'RATE_LIMITED', { timeout: 10_000 });
  await expect(card.getByTestId('alert-entry').first()).toHaveAttribute('data-to', 'RATE_LIMITED');
});

test('a workspace session sees only its own workspace on the dashboard', async ({ page, consoleErrors }) => {
  const own = uid('dash-own');
  const other = uid('dash-other');
  const key = await createWorkspace(page.request, own);
  await createWorkspace(page.request, other);
  await openWorkspace(page, key);
  await page.getByRole('link', { name: 'Dashboard', exact: true }).click();
  await expect(page).toHaveURL(/\/dashboard$/);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Your workspace');
  await expect(page.getByTestId('workspace-card')).toHaveCount(1);
  await expect(page.getByTestId('workspace-card')).toHaveAttribute('data-workspace', own);
  await expect(page.getByLabel('Find a workspace')).toHaveCount(0);
  await expect(page.locator('body')).not.toContainText(other);
});
