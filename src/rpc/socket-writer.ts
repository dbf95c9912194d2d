/** zeromq 6 allows one send in progress per socket; this serialises sends without blocking callers. */
import type { Writable } from 'zeromq';

export class SocketWriter {
  private queue: Buffer[][] = [];
  private pumping = false;
  private closed = false;

  constructor(private readonly socket: Writable, private readonly onError: (e: unknown) => void = () => {}) {}

  send(frames: Buffer[]): void {
    if (this.closed) return;
    this.queue.push(frames);
    if (!this.pumping) void this.pump();
  }

  close(): void {
    this.closed = true;
    this.queue = [];
  }

  /** Resolves once everything queued so far has been handed to the socket. */
  async flushed(): Promise<void> {
    while ((this.pumping || this.queue.length > 0) && !this.closed) await new Promise((r) => setImmediate(r));
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const frames = this.queue.shift()!;
        try {
          await this.socket.send(frames);
        } catch (e) {
          if (!this.closed) this.onError(e);
        }
      }
    } finally {
      this.pumping = false;
    }
  }
}
