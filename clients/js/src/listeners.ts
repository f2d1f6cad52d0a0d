/**
 * Typed listeners by event name, shared by the client and its documents: `on` returns the
 * function that stops listening, and a listener that throws never breaks the caller's frame
 * handling (its error is reported as uncaught instead).
 */
export class Listeners<Events> {
  private readonly byType = new Map<keyof Events, Set<(value: any) => void>>();

  on<K extends keyof Events>(type: K, listener: (value: Events[K]) => void): () => void {
    let set = this.byType.get(type);
    if (!set) {
      set = new Set();
      this.byType.set(type, set);
    }
    set.add(listener);
    return () => set!.delete(listener);
  }

  emit<K extends keyof Events>(type: K, value: Events[K]): void {
    for (const listener of this.byType.get(type) ?? []) {
      try {
        listener(value);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
