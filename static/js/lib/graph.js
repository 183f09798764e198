// Drawing a run's graph: the layout comes from the worker (static/js/workers/layout.js, dagre),
// the SVG is built here with DOM calls, once per run (x-for over 2 000 nodes would be slow, and
// the CSP build has no x-html). Colour and icon come from the node's status and kind.

const SVG_NS = 'http://www.w3.org/2000/svg';
export const NODE_WIDTH = 176;
export const NODE_HEIGHT = 54;
const LABEL_CHARACTERS = 24;

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

/** Lay the graph out in a worker, so a large run never freezes the page. */
export function layoutInWorker(run) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('../workers/layout.js', import.meta.url), { type: 'module' });
    worker.onmessage = (event) => {
      worker.terminate();
      if (event.data.ok) resolve(event.data);
      else reject(new Error(event.data.message));
    };
    worker.onerror = (event) => {
      worker.terminate();
      reject(new Error(event.message || 'The layout worker failed.'));
    };
    worker.postMessage({
      nodes: run.nodes.map((node) => ({ id: node.id, width: NODE_WIDTH, height: NODE_HEIGHT })),
      edges: run.edges.map((edge) => ({ from: edge.from, to: edge.to })),
    });
  });
}

function element(name, attributes = {}, text = null) {
  const created = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) created.setAttribute(key, String(value));
  if (text !== null) created.textContent = text;
  return created;
}

function shortened(text, length) {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

export function nodeLabel(node) {
  return node.label || node.id;
}

/** What a screen reader hears on a node. */
export function nodeAriaLabel(node, hasMenu) {
  const ref = node.ref ? `, ref ${node.ref}` : '';
  const menu = hasMenu ? ' Shift+F10 for actions.' : '';
  return `${nodeLabel(node)}: ${node.kind}, ${node.status}${ref}. Enter for details.${menu}`;
}

function edgePath(points) {
  return points.map((point, index) => `${index === 0 ? 'M' : 'L'}${point.x.toFixed(1)},${point.y.toFixed(1)}`).join(' ');
}

/** Replace the contents of `viewport` (an SVG <g>) with the laid-out run. */
export function drawGraph(viewport, run, layout, hasMenu) {
  const edges = element('g', { class: 'graph-edges', 'aria-hidden': 'true' });
  layout.edges.forEach((points, index) => {
    const edge = run.edges[index];
    edges.append(element('path', { class: 'graph-edge', d: edgePath(points), 'data-from': edge.from, 'data-to': edge.to }));
  });
  const nodes = element('g', { class: 'graph-nodes' });
  for (const node of run.nodes) {
    const place = layout.nodes[node.id];
    const group = element('g', {
      class: `graph-node node-status-${node.status} node-kind-${node.kind}`,
      transform: `translate(${(place.x - NODE_WIDTH / 2).toFixed(1)},${(place.y - NODE_HEIGHT / 2).toFixed(1)})`,
      tabindex: 0,
      role: 'button',
      'data-node-id': node.id,
      'aria-label': nodeAriaLabel(node, hasMenu),
    });
    if (hasMenu) group.setAttribute('aria-haspopup', 'menu');
    group.append(
      element('rect', { class: 'node-box', width: NODE_WIDTH, height: NODE_HEIGHT, rx: 6 }),
      element('text', { class: 'node-icon', x: 10, y: 20, 'aria-hidden': 'true' }, KIND_ICONS[node.kind] || '•'),
      element('text', { class: 'node-kind', x: 26, y: 20, 'aria-hidden': 'true' }, node.kind),
      element('text', { class: 'node-status', x: NODE_WIDTH - 10, y: 20, 'text-anchor': 'end', 'aria-hidden': 'true' }, `${STATUS_ICONS[node.status] || ''} ${node.status}`),
      element('text', { class: 'node-label', x: 10, y: 41, 'aria-hidden': 'true' }, shortened(nodeLabel(node), LABEL_CHARACTERS)),
    );
    nodes.append(group);
  }
  viewport.replaceChildren(edges, nodes);
}

/** The node element for an id, if it is drawn. */
export function nodeElement(nodeId) {
  if (nodeId === null || nodeId === undefined) return null;
  return document.querySelector(`.graph-node[data-node-id="${CSS.escape(nodeId)}"]`);
}
