/** A minimal typed event emitter (no Node.js dependency, works in browsers). */
export class Emitter<Events extends Record<string, unknown>> {
  private listeners: { [K in keyof Events]?: Set<(e: Events[K]) => void> } = {};

  on<K extends keyof Events>(event: K, fn: (e: Events[K]) => void): () => void {
    let set = this.listeners[event];
    if (!set) {
      set = new Set();
      this.listeners[event] = set;
    }
    set.add(fn);
    return () => this.off(event, fn);
  }

  off<K extends keyof Events>(event: K, fn: (e: Events[K]) => void): void {
    this.listeners[event]?.delete(fn);
  }

  protected emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const set = this.listeners[event];
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(payload);
      } catch (err) {
        // A listener's bug must not break the connection's state machine.
        console.error(`chatd client: listener for ${String(event)} threw`, err);
      }
    }
  }
}
