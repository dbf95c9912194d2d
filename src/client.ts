/** A small TypeScript client of the admin and query APIs (used by the CLI; usable by applications). */
export class ClipperHttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export class ClipperClient {
  constructor(readonly adminUrl = 'http://127.0.0.1:1338', readonly queryUrl = 'http://127.0.0.1:1337') {}

  admin<T = unknown>(endpoint: string, body: Record<string, unknown> = {}): Promise<T> {
    return this.request<T>(`${this.adminUrl}/admin/${endpoint}`, body);
  }

  status<T = unknown>(): Promise<T> {
    return this.request<T>(`${this.adminUrl}/admin/status`);
  }

  predict<T = unknown>(app: string, body: Record<string, unknown>): Promise<T> {
    return this.request<T>(`${this.queryUrl}/${encodeURIComponent(app)}/predict`, body);
  }

  private async request<T>(url: string, body?: Record<string, unknown>): Promise<T> {
    let res: Response;
    try {
      res = await fetch(url, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    } catch (e) {
      throw new ClipperHttpError(0, 'UNREACHABLE', `cannot reach ${new URL(url).origin}: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}`);
    }
    const text = await res.text();
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
    if (!res.ok) {
      const err = data as { error?: string; cause?: string };
      throw new ClipperHttpError(res.status, err.error ?? String(res.status), err.cause ?? text);
    }
    return data as T;
  }
}
