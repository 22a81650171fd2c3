import { test as base, expect, Page } from '@playwright/test';
import path from 'node:path';
import { createWorkspace, openWorkspace, watchConsole } from './fixtures';
import { FakeOpenAI } from './fake_openai';
import { TestServer } from './server';

/** Pictures for a person to check, when QUOTA_SCREENSHOTS names a folder. */
async function shoot(page: Page, name: string) {
  const dir = process.env.QUOTA_SCREENSHOTS;
  if (!dir) return;
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.screenshot({ path: path.join(dir, `${name}-${scheme}.png`) });
  }
  await page.emulateMedia({ colorScheme: null });
}

// A server of its own whose upstream is a local stand-in for OpenAI.
const test = base.extend<{}, { upstream: FakeOpenAI; server: TestServer }>({
  upstream: [
    async ({}, use) => {
      const fake = await FakeOpenAI.start();
      await use(fake);
      await fake.stop();
    },
    { scope: 'worker' },
  ],
  server: [
    async ({ upstream }, use) => {
      const server = await TestServer.start({
        OPENAI_BASE_URL: upstream.baseUrl,
        OPENAI_API_KEY: 'sk-e2e-not-a-real-key',
      });
      await use(server);
      await server.stop();
    },
    { scope: 'worker' },
  ],
});

test('a message goes through send_message and the reply appears in the transcript', async ({
  browser,
  server,
  upstream,
}) => {
  upstream.failWith = null;
  const context = await browser.newContext({ baseURL: server.url });
  try {
    const page = await context.newPage();
    const errors = watchConsole(page);
    const key = await createWorkspace(context.request, 'chat-ok', {}, server.adminKey);
    await openWorkspace(page, key);

    await page.getByTestId('composer').fill('What is a token?');
    await page.getByTestId('send').click();
    const messages = page.getByTestId('message');
    await expect(messages).toHaveCount(2);
    await expect(messages.nth(0)).toHaveAttribute('data-role', 'you');
    await expect(messages.nth(0)).toContainText('What is a token?');
    await expect(messages.nth(1)).toHaveAttribute('data-role', 'assistant');
    await expect(messages.nth(1)).toContainText('Echo: What is a token?');
    await expect(page.getByTestId('composer')).toHaveValue('');
    // Counted like any other call: one request, the reply's tokens.
    await expect(page.locator('[data-testid="meter"][data-window="requests-per-minute"]')).toContainText('1 / ');
    await expect(page.locator('[data-testid="meter"][data-window="tokens-per-minute"]')).toContainText('20 / ');

    // Enter sends as well; the transcript is server-rendered on reload.
    await page.getByTestId('composer').fill('And a second one');
    await page.getByTestId('composer').press('Enter');
    await expect(messages).toHaveCount(4);
    await page.reload();
    await expect(page.getByTestId('message')).toHaveCount(4);
    await shoot(page, 'conversation');
    expect(errors).toEqual([]);
  } finally {
    await context.close();
  }
});

test('an upstream failure is shown inline and the text is kept', async ({ browser, server, upstream }) => {
  const context = await browser.newContext({ baseURL: server.url });
  try {
    const page = await context.newPage();
    const errors = watchConsole(page);
    const key = await createWorkspace(context.request, 'chat-fail', {}, server.adminKey);
    await openWorkspace(page, key);

    upstream.failWith = 500;
    await page.getByTestId('composer').fill('Will this work?');
    await page.getByTestId('send').click();
    const error = page.getByTestId('chat-error');
    await expect(error).toBeVisible();
    await expect(error).toHaveAttribute('role', 'alert');
    await expect(error).toContainText('500');
    await shoot(page, 'conversation-error');
    await expect(page.getByTestId('message')).toHaveCount(0);
    await expect(page.getByTestId('composer')).toHaveValue('Will this work?');

    // Once the upstream is back, the same text goes through and the error clears.
    upstream.failWith = null;
    await page.getByTestId('send').click();
    await expect(page.getByTestId('message')).toHaveCount(2);
    await expect(error).toHaveCount(0);
    expect(errors).toEqual([]);
  } finally {
    await context.close();
    upstream.failWith = null;
  }
});

test('when the day quota is used up by a message, sending is disabled with the reason', async ({ browser, server }) => {
  const context = await browser.newContext({ baseURL: server.url });
  try {
    const page = await context.newPage();
    const errors = watchConsole(page);
    const key = await createWorkspace(context.request, 'chat-blocked', { requests_per_day: 1 }, server.adminKey);
    await openWorkspace(page, key);
    await page.getByTestId('composer').fill('first');
    await page.getByTestId('send').click();
    await expect(page.getByTestId('message')).toHaveCount(2);
    // The day's one request is used: QUOTA_EXCEEDED, sending disabled with the reason.
    await expect(page.getByTestId('quota-banner')).toHaveAttribute('data-status', 'QUOTA_EXCEEDED');
    await page.getByTestId('composer').fill('second');
    await expect(page.getByTestId('send')).toBeDisabled();
    await expect(page.getByTestId('send-hint')).toContainText('Sending is paused: quota exceeded');
    await expect(page.getByTestId('message')).toHaveCount(2);
    expect(errors).toEqual([]);
  } finally {
    await context.close();
  }
});
