// Re-running a refresh on a timer without overlapping calls.

/**
 * Runs ``fn`` now and then ``ms`` after each run ends; returns a stop function.
 * ``fn`` returns a promise; its rejection is its own business (callers show errors).
 */
export function poll(fn, ms) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    if (stopped) return;
    try {
      await fn();
    } catch {
      // Each page shows its own refresh errors; the loop goes on.
    } finally {
      if (!stopped) timer = setTimeout(tick, ms);
    }
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
