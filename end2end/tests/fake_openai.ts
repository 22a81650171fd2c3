// A stand-in for OpenAI's chat completions endpoint, on this machine, for the
// conversation tests: it echoes the last user message, or fails on demand.
import http from 'node:http';

export class FakeOpenAI {
  /** When set, every request is answered with this HTTP status and an OpenAI error body. */
  failWith: number | null = null;
  requests = 0;
  private constructor(private readonly server: http.Server, readonly port: number) {}

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}/v1`;
  }

  static async start(): Promise<FakeOpenAI> {
    let fake: FakeOpenAI | null = null;
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => fake?.answer(req, res, body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    fake = new FakeOpenAI(server, typeof address === 'object' && address ? address.port : 0);
    return fake;
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse, body: string) {
    this.requests += 1;
    res.setHeader('content-type', 'application/json');
    if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
      res.statusCode = 404;
      res.end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error', code: null } }));
      return;
    }
    if (this.failWith !== null) {
      res.statusCode = this.failWith;
      res.end(JSON.stringify({ error: { message: 'The server had an error', type: 'server_error', code: null } }));
      return;
    }
    let last = '';
    try {
      const parsed = JSON.parse(body);
      const user = (parsed.messages ?? []).filter((m: any) => m.role === 'user');
      last = String(user[user.length - 1]?.content ?? '');
    } catch {
      last = '';
    }
    res.statusCode = 200;
    res.end(
      JSON.stringify({
        id: `chatcmpl-${this.requests}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: 'gpt-4o-mini',
        choices: [{ index: 0, message: { role: 'assistant', content: `Echo: ${last}` }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 12, completion_tokens: 8, total_tokens: 20 },
      }),
    );
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
