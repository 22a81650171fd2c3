import { test, expect, createWorkspace, openWorkspace, record, rateLimited, SUCCESS, uid, watchConsole } from './fixtures';

test('two browsers signed in to two workspaces see only their own changes', async ({ browser, request }) => {
  const idA = uid('iso-a');
  const idB = uid('iso-b');
  const keyA = await createWorkspace(request, idA, { requests_per_minute: 5 });
  const keyB = await createWorkspace(request, idB, { requests_per_minute: 5 });
  const contextA = await browser.newContext();
  const contextB = await browser.newContext();
  try {
    const a = await contextA.newPage();
    const b = await contextB.newPage();
    const errorsA = watchConsole(a);
    const errorsB = watchConsole(b);
    await openWorkspace(a, keyA);
    await openWorkspace(b, keyB);
    await expect(a.getByTestId('workspace-id')).toHaveText(idA);
    await expect(b.getByTestId('workspace-id')).toHaveText(idB);

    // A goes to WARNING.
    await record(request, keyA, SUCCESS, 4);
    await expect(a.getByTestId('quota-banner')).toHaveAttribute('data-status', 'WARNING');
    await expect(a.getByTestId('toast')).toHaveCount(1);

    // B goes to RATE_LIMITED.
    await record(request, keyB, rateLimited(60));
    await expect(b.getByTestId('quota-banner')).toHaveAttribute('data-status', 'RATE_LIMITED');
    await expect(b.getByTestId('toast')).toHaveCount(1);
    await expect(b.getByTestId('toast')).toHaveAttribute('data-status', 'RATE_LIMITED');

    // Neither saw the other's change.
    await expect(a.getByTestId('quota-banner')).toHaveAttribute('data-status', 'WARNING');
    await expect(a.getByTestId('toast')).toHaveCount(1);
    await expect(a.getByTestId('toast')).toHaveAttribute('data-status', 'WARNING');
    await expect(a.locator('[data-testid="meter"][data-window="requests-per-minute"]')).toContainText('4 / 5');
    await expect(b.locator('[data-testid="meter"][data-window="requests-per-minute"]')).toContainText('1 / 5');
    await expect(b.getByTestId('send')).toBeDisabled();

    // Each dashboard lists only its own workspace.
    for (const [page, own, other] of [
      [a, idA, idB],
      [b, idB, idA],
    ] as const) {
      await page.goto('/dashboard');
      await expect(page.getByTestId('workspace-card')).toHaveCount(1);
      await expect(page.getByTestId('workspace-card')).toHaveAttribute('data-workspace', own);
      await expect(page.locator('body')).not.toContainText(other);
    }

    // A workspace session cannot open another workspace.
    await a.goto(`/?workspace=${idB}`);
    await expect(a.getByTestId('page-error')).toContainText('only see its own workspace');
    expect(errorsA).toEqual([]);
    expect(errorsB).toEqual([]);
  } finally {
    await contextA.close();
    await contextB.close();
  }
});
