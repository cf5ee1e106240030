// How times, durations and numbers read on every page.

/** An epoch-ms time as local "YYYY-MM-DD HH:MM:SS", or "—". */
export function time(ms) {
  if (ms === null || ms === undefined) return "—";
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/** An epoch-ms time as "HH:MM" (chart axes). */
export function clock(ms) {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

/** A duration in ms as "850 ms", "12.3 s", "4m 05s", "2h 10m" or "3d 4h". */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const secs = ms / 1000;
  if (secs < 60) return `${secs.toFixed(secs < 10 ? 2 : 1)} s`;
  const m = Math.floor(secs / 60);
  if (m < 60) return `${m}m ${String(Math.floor(secs % 60)).padStart(2, "0")}s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 24) return `${hrs}h ${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(hrs / 24)}d ${hrs % 24}h`;
}

/** A 0..1 rate as "97.5%", or "—" when there is none. */
export function percent(rate) {
  if (rate === null || rate === undefined) return "—";
  return `${(rate * 100).toFixed(rate >= 0.999 || rate === 0 ? 0 : 1)}%`;
}

/** An integer with thousands separators. */
export function count(n) {
  return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US");
}

/** ``text`` cut to ``max`` characters with an ellipsis. */
export function truncate(text, max) {
  const str = String(text ?? "");
  return str.length > max ? `${str.slice(0, Math.max(1, max - 1))}…` : str;
}
