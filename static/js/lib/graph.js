// Drawing a run's graph: the layout comes from ELK (elkjs) in its web worker, served by the app,
// the SVG is built here with DOM calls, once per run (x-for over 2 000 nodes would be slow, and
// the CSP build has no x-html). Colour and icon come from the node's status and kind.

const SVG_NS = 'http://www.w3.org/2000/svg';
export const NODE_WIDTH = 176;
export const NODE_HEIGHT = 54;
export const LABEL_CLIP_ID = 'graph-label-clip';

export const KIND_ICONS = {
  llm: '✦',
  tool: '⚙',
  agent: '◎',
  retrieval: '⌕',
  human: '☺',
  other: '•',
};

export const STATUS_ICONS = {
  pending: '○',
  running: '◔',
  succeeded: '✓',
  failed: '✕',
  skipped: '⤼',
};

// ELK's layered algorithm, top to bottom. Its worker answers {id, data} or {id, error}.
const LAYOUT_OPTIONS = {
  'elk.algorithm': 'layered',
  'elk.direction': 'DOWN',
  'elk.edgeRouting': 'POLYLINE',
  'elk.spacing.nodeNode': '28',
  'elk.layered.spacing.nodeNodeBetweenLayers': '44',
  'elk.padding': '[top=24,left=24,bottom=24,right=24]',
};
// Past this many nodes, ELK's cheaper phases: layers by longest path, and the nodes of each layer
// kept in the order the run reports them (no crossing minimisation, which is most of ELK's time
// on a large run), with the simple node placement. Smaller runs get ELK's full layered layout.
const LARGE_GRAPH_NODES = 500;
const LARGE_GRAPH_OPTIONS = {
  'elk.layered.layering.strategy': 'LONGEST_PATH',
  'elk.layered.crossingMinimization.strategy': 'NONE',
  'elk.layered.nodePlacement.strategy': 'SIMPLE',
  'elk.layered.thoroughness': '1',
};
const LAYOUT_WORKER = '/static/vendor/elk-worker.min.js';

function edgePoints(edge) {
  const section = edge.sections && edge.sections[0];
  if (!section) return [];
  return [section.startPoint, ...(section.bendPoints || []), section.endPoint];
}

// One ELK worker for the page's life, started before the run is fetched, so that its 1.6 MB
// script is loaded and compiled while the request is in flight; each layout is one message.
let layoutWorker = null;
let nextMessageId = 1;
const pending = new Map();

function failAll(message) {
  for (const waiting of pending.values()) waiting.reject(new Error(message));
  pending.clear();
  if (layoutWorker) layoutWorker.terminate();
  layoutWorker = null;
}

/** Start the layout worker now (idempotent): call it as early as the page knows it will draw. */
export function startLayoutWorker() {
  if (layoutWorker) return layoutWorker;
  layoutWorker = new Worker(LAYOUT_WORKER);
  layoutWorker.onerror = (event) => failAll(event.message || 'The layout worker failed.');
  layoutWorker.onmessage = (event) => {
    const { id, data, error } = event.data;
    const waiting = pending.get(id);
    if (!waiting) return;
    pending.delete(id);
    if (error) waiting.reject(new Error(error.message || String(error)));
    else waiting.resolve(data);
  };
  post({ cmd: 'register', algorithms: ['layered'] });
  return layoutWorker;
}

function post(message) {
  const id = nextMessageId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    layoutWorker.postMessage({ id, ...message });
  });
}

/** The ELK options this run is laid out with (exported for the page's figure). */
export function layoutOptionsFor(run) {
  return run.nodes.length > LARGE_GRAPH_NODES ? { ...LAYOUT_OPTIONS, ...LARGE_GRAPH_OPTIONS } : LAYOUT_OPTIONS;
}

/**
 * Lay the graph out in ELK's web worker, so a large run never freezes the page. Resolves with
 * {width, height, nodes: {id: {x, y}} (centres), edges: [[{x, y}, …], …] in run order, elapsedMs}.
 */
export async function layoutInWorker(run) {
  const started = performance.now();
  startLayoutWorker();
  const data = await post({
    cmd: 'layout',
    graph: {
      id: 'run',
      children: run.nodes.map((node) => ({ id: node.id, width: NODE_WIDTH, height: NODE_HEIGHT })),
      edges: run.edges.map((edge, index) => ({ id: `e${index}`, sources: [edge.from], targets: [edge.to] })),
    },
    layoutOptions: layoutOptionsFor(run),
    options: {},
  });
  const nodes = {};
  for (const child of data.children) nodes[child.id] = { x: child.x + child.width / 2, y: child.y + child.height / 2 };
  return {
    width: data.width,
    height: data.height,
    nodes,
    edges: data.edges.map(edgePoints),
    elapsedMs: performance.now() - started,
  };
}

function element(name, attributes = {}, text = null) {
  const created = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) created.setAttribute(key, String(value));
  if (text !== null) created.textContent = text;
  return created;
}

export function nodeLabel(node) {
  return node.label || node.id;
}

// A node's accessible name is its visible text (kind, status, label); what keys do is its description.
export const NODE_HELP_ID = 'graph-node-help';
export const NODE_HELP_READ_ONLY_ID = 'graph-node-help-read-only';

function edgePath(points) {
  return points.map((point, index) => `${index === 0 ? 'M' : 'L'}${point.x.toFixed(1)},${point.y.toFixed(1)}`).join(' ');
}

/** One node's box and texts, with no node in it yet: each drawn node is a deep clone of it. */
function nodeTemplate(hasMenu) {
  const group = element('g', {
    tabindex: 0,
    role: 'button',
    'aria-describedby': hasMenu ? NODE_HELP_ID : NODE_HELP_READ_ONLY_ID,
  });
  if (hasMenu) group.setAttribute('aria-haspopup', 'menu');
  group.append(
    element('rect', { class: 'node-box', width: NODE_WIDTH, height: NODE_HEIGHT, rx: 6 }),
    element('text', { class: 'node-icon', x: 10, y: 20, 'aria-hidden': 'true' }, ''),
    element('text', { class: 'node-kind', x: 26, y: 20 }, ''),
    element('text', { class: 'node-status-icon', x: NODE_WIDTH - 10, y: 20, 'text-anchor': 'end', 'aria-hidden': 'true' }, ''),
    element('text', { class: 'node-status', x: NODE_WIDTH - 24, y: 20, 'text-anchor': 'end' }, ''),
    // The whole label, clipped to the box: the name is the whole label, not a cut one.
    element('text', { class: 'node-label', x: 10, y: 41, 'clip-path': `url(#${LABEL_CLIP_ID})` }, ''),
  );
  return group;
}

/** Replace the contents of `viewport` (an SVG <g>) with the laid-out run. */
export function drawGraph(viewport, run, layout, hasMenu) {
  const edges = element('g', { class: 'graph-edges', 'aria-hidden': 'true' });
  const edgeTemplate = element('path', { class: 'graph-edge' });
  layout.edges.forEach((points, index) => {
    const edge = run.edges[index];
    const path = edgeTemplate.cloneNode(false);
    path.setAttribute('d', edgePath(points));
    path.setAttribute('data-from', edge.from);
    path.setAttribute('data-to', edge.to);
    edges.append(path);
  });
  const nodes = element('g', { class: 'graph-nodes' });
  const template = nodeTemplate(hasMenu);
  for (const node of run.nodes) {
    const place = layout.nodes[node.id];
    const group = template.cloneNode(true);
    group.setAttribute('class', `graph-node node-status-${node.status} node-kind-${node.kind}`);
    group.setAttribute('transform', `translate(${(place.x - NODE_WIDTH / 2).toFixed(1)},${(place.y - NODE_HEIGHT / 2).toFixed(1)})`);
    group.setAttribute('data-node-id', node.id);
    const texts = group.children;
    texts[1].textContent = KIND_ICONS[node.kind] || '•';
    texts[2].textContent = node.kind;
    texts[3].textContent = STATUS_ICONS[node.status] || '';
    texts[4].textContent = node.status;
    texts[5].textContent = nodeLabel(node);
    nodes.append(group);
  }
  viewport.replaceChildren(edges, nodes);
}

/** The node element for an id, if it is drawn. */
export function nodeElement(nodeId) {
  if (nodeId === null || nodeId === undefined) return null;
  return document.querySelector(`.graph-node[data-node-id="${CSS.escape(nodeId)}"]`);
}
