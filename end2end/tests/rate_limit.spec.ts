import { test, expect, createWorkspace, openWorkspace, record, rateLimited, uid } from './fixtures';

test('RATE_LIMITED disables send with a countdown, and sending comes back by itself when it ends', async ({
  page,
  consoleErrors,
}) => {
  test.setTimeout(40_000);
  const id = uid('limited');
  const key = await createWorkspace(page.request, id);
  await openWorkspace(page, key);

  const send = page.getByTestId('send');
  await page.getByTestId('composer').fill('A question that has to wait');
  await expect(send).toBeEnabled();

  // OpenAI said 429 rate_limit_exceeded, retry in 4 s.
  await record(page.request, key, rateLimited(4));

  const banner = page.getByTestId('quota-banner');
  await expect(banner).toHaveAttribute('data-status', 'RATE_LIMITED');
  await expect(send).toBeDisabled();
  await expect(page.getByTestId('send-hint')).toContainText(/Sending is paused: rate limited — allowed again in [1-4]s/);
  const countdown = banner.getByTestId('countdown');
  await expect(countdown).toHaveText(/^[1-4]s$/);
  const first = Number(await countdown.getAttribute('data-seconds'));
  // It counts down, live.
  await expect
    .poll(async () => Number(await countdown.getAttribute('data-seconds')), { timeout: 4_000 })
    .toBeLessThan(first);
  // The transcript and the composer stay usable while blocked.
  await expect(page.getByTestId('transcript')).toBeVisible();
  await expect(page.getByTestId('composer')).toBeEditable();

  // The server's ticker ends the block; the page follows without a reload.
  await expect(send).toBeEnabled({ timeout: 10_000 });
  await expect(banner).toHaveCount(0);
  await expect(page.getByTestId('send-hint')).not.toContainText('paused');
  await expect(page.getByTestId('composer')).toHaveValue('A question that has to wait');
  await expect(page.locator('[data-testid="toast"][data-level="info"]')).toContainText('Back to normal');
});
