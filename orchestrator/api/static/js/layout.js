// Where each task of a Conductor definition goes on the graph (no DOM here, only geometry).
//
// Every block is {w, h, place(x, y, out)}: it enters at the middle of its top edge and leaves
// at the middle of its bottom edge, so a sequence stacks blocks on one vertical axis. place()
// appends nodes, edges, boxes and labels to ``out`` in absolute coordinates.

export const NODE = { w: 180, h: 48 };
const SMALL = { w: 124, h: 34 };
const VGAP = 38;
const HGAP = 26;
const LOOP_SIDE = 30;
const LOOP_TOP = 14;
const LOOP_BOTTOM = 24;
const EMPTY = { w: 64, h: 18 };
const CHAR_W = 7;

const FORKS = new Set(["FORK_JOIN", "FORK", "FORK_JOIN_DYNAMIC"]);

/** A path from (x1, y1) down to (x2, y2): straight when aligned, an S-curve otherwise. */
export function curve(x1, y1, x2, y2) {
  if (x1 === x2) return `M${x1} ${y1} V${y2}`;
  const ym = (y1 + y2) / 2;
  return `M${x1} ${y1} C${x1} ${ym}, ${x2} ${ym}, ${x2} ${y2}`;
}

/** A positioned node: ``def`` (a WorkflowTask) drawn as ``shape`` of ``size`` at (x, y). */
function placed(def, shape, size, x, y) {
  return { ref: def?.taskReferenceName, def, shape, x, y, w: size.w, h: size.h };
}

function node(def, size, shape) {
  return { w: size.w, h: size.h, place: (x, y, out) => out.nodes.push(placed(def, shape, size, x, y)) };
}

function empty() {
  return {
    ...EMPTY,
    place(x, y, out) {
      out.edges.push({ d: `M${x + EMPTY.w / 2} ${y} V${y + EMPTY.h}`, cls: "edge", arrow: false });
    },
  };
}

/** The blocks of a task list; a FORK followed by its JOIN becomes one block. */
function sequence(tasks, ctx) {
  const blocks = [];
  for (let i = 0; i < (tasks || []).length; i++) {
    const task = tasks[i];
    const next = tasks[i + 1];
    if (FORKS.has(task.type)) {
      const join = next?.type === "JOIN" ? next : null;
      blocks.push(fan(task, join, forkArms(task, ctx), ctx));
      if (join) i++;
    } else {
      blocks.push(block(task, ctx));
    }
  }
  if (!blocks.length) return empty();
  const w = Math.max(...blocks.map((b) => b.w));
  const h = blocks.reduce((sum, b) => sum + b.h, 0) + VGAP * (blocks.length - 1);
  return {
    w,
    h,
    place(x, y, out) {
      const cx = x + w / 2;
      let top = y;
      blocks.forEach((b, i) => {
        if (i > 0) out.edges.push({ d: `M${cx} ${top - VGAP} V${top}`, cls: "edge", arrow: true });
        b.place(x + (w - b.w) / 2, top, out);
        top += b.h + VGAP;
      });
    },
  };
}

function block(task, ctx) {
  switch (task.type) {
    case "SWITCH":
    case "DECISION":
      return fan(task, null, switchArms(task, ctx), ctx);
    case "DO_WHILE":
      return loop(task, ctx);
    case "JOIN":
      return node(task, SMALL, "pill");
    case "SUB_WORKFLOW":
      return node(task, NODE, "sub");
    default:
      return node(task, NODE, "rect");
  }
}

function forkArms(task, ctx) {
  if (task.type !== "FORK_JOIN_DYNAMIC") {
    return (task.forkTasks || []).map((tasks) => ({ tasks }));
  }
  const spawned = ctx.lookup(task.taskReferenceName)?.output?.forkedTaskDefs;
  if (Array.isArray(spawned) && spawned.length) return spawned.map((t) => ({ tasks: [t] }));
  return [{ placeholder: "dynamic tasks" }];
}

function switchArms(task, ctx) {
  const cases = Object.entries(task.decisionCases || {});
  const chosen = ctx.selectedCase(task);
  const known = cases.some(([label]) => label === chosen);
  const arms = cases.map(([label, tasks]) => ({ tasks, label, taken: chosen === label }));
  arms.push({ tasks: task.defaultCase || [], label: "default", taken: chosen != null && !known });
  return arms.map((arm) => ({ ...arm, decided: chosen != null }));
}

function armBlock(arm, ctx) {
  if (arm.placeholder) return node({ type: arm.placeholder }, NODE, "placeholder");
  const inner = sequence(arm.tasks, ctx);
  const labelW = arm.label === undefined ? 0 : arm.label.length * CHAR_W + 18;
  if (labelW <= inner.w) return inner;
  return { w: labelW, h: inner.h, place: (x, y, out) => inner.place(x + (labelW - inner.w) / 2, y, out) };
}

/** A fork (arms joined by its JOIN) or a switch (arms meeting at a merge point). */
function fan(task, join, arms, ctx) {
  const isSwitch = task.type === "SWITCH" || task.type === "DECISION";
  const head = isSwitch ? NODE : SMALL;
  const blocks = arms.map((arm) => armBlock(arm, ctx));
  const armsW = blocks.reduce((sum, b) => sum + b.w, 0) + HGAP * (blocks.length - 1);
  const maxH = Math.max(...blocks.map((b) => b.h));
  const w = Math.max(head.w, armsW, join ? SMALL.w : 0);
  const h = head.h + VGAP + maxH + VGAP + (join ? SMALL.h : 0);
  return {
    w,
    h,
    place(x, y, out) {
      const cx = x + w / 2;
      out.nodes.push(placed(task, isSwitch ? "hex" : "pill", head, cx - head.w / 2, y));
      const armY = y + head.h + VGAP;
      const joinY = armY + maxH + VGAP;
      let ax = x + (w - armsW) / 2;
      blocks.forEach((b, i) => {
        const arm = arms[i];
        const acx = ax + b.w / 2;
        const state = arm.decided ? (arm.taken ? " taken" : " untaken") : "";
        out.edges.push({ d: curve(cx, y + head.h, acx, armY), cls: `edge${state}`, arrow: true });
        if (arm.label !== undefined) {
          out.labels.push({ x: acx, y: armY - 9, text: arm.label, cls: `case-label${state}` });
        }
        b.place(ax, armY, out);
        const bottom = armY + b.h;
        const tail = bottom < armY + maxH ? `M${acx} ${bottom} V${armY + maxH} ` : "";
        const d = tail + curve(acx, armY + maxH, cx, joinY).replace(/^M/, tail ? "L" : "M");
        out.edges.push({ d, cls: `edge${state}`, arrow: Boolean(join) });
        ax += b.w + HGAP;
      });
      if (join) {
        out.nodes.push(placed(join, "pill", SMALL, cx - SMALL.w / 2, joinY));
      } else {
        out.dots.push({ x: cx, y: joinY });
      }
    },
  };
}

/** A DO_WHILE: a box around the loop node and its body, with an edge back to the loop node. */
function loop(task, ctx) {
  const body = sequence(task.loopOver, ctx);
  const innerW = Math.max(NODE.w, body.w);
  const w = innerW + 2 * LOOP_SIDE;
  const h = LOOP_TOP + NODE.h + VGAP + body.h + LOOP_BOTTOM;
  return {
    w,
    h,
    place(x, y, out) {
      const cx = x + w / 2;
      const headY = y + LOOP_TOP;
      const bodyY = headY + NODE.h + VGAP;
      const bodyBottom = bodyY + body.h;
      const backX = x + w - LOOP_SIDE / 2;
      out.boxes.push({ x, y, w, h, cls: "loop-box", ref: task.taskReferenceName });
      out.edges.push({ d: `M${cx} ${y} V${headY}`, cls: "edge", arrow: false });
      out.nodes.push(placed(task, "loop", NODE, cx - NODE.w / 2, headY));
      out.edges.push({ d: `M${cx} ${headY + NODE.h} V${bodyY}`, cls: "edge", arrow: true });
      body.place(x + (w - body.w) / 2, bodyY, out);
      const back = [
        `M${cx} ${bodyBottom}`,
        `V${bodyBottom + 10}`,
        `H${backX}`,
        `V${headY + NODE.h / 2}`,
        `H${cx + NODE.w / 2}`,
      ];
      out.edges.push({ d: back.join(" "), cls: "edge back", arrow: true });
      out.edges.push({ d: `M${cx} ${bodyBottom} V${y + h}`, cls: "edge", arrow: false });
    },
  };
}

/**
 * Lays out ``tasks`` (a definition's task list) from (x, y).
 * ``ctx.lookup(ref)`` gives the latest task of a reference name (for dynamic forks),
 * ``ctx.selectedCase(switchTask)`` the case a SWITCH chose (or null).
 * Returns {w, h, nodes, edges, boxes, labels, dots}.
 */
export function layout(tasks, ctx, x = 0, y = 0) {
  const root = sequence(tasks, ctx);
  const out = { nodes: [], edges: [], boxes: [], labels: [], dots: [] };
  root.place(x, y, out);
  return { w: root.w, h: root.h, ...out };
}
