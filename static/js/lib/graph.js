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
// Past this many nodes, fewer crossing-minimisation sweeps and the simple node placement: less
// work for ELK on a large run (5.6 s → 5.2 s for the README's 2 000 nodes), boxes a little less aligned.
const LARGE_GRAPH_NODES = 500;
const LARGE_GRAPH_OPTIONS = {
  'elk.layered.thoroughness': '1',
  'elk.layered.nodePlacement.strategy': 'SIMPLE',
};
const LAYOUT_WORKER = '/static/vendor/elk-worker.min.js';

function edgePoints(edge) {
  const section = edge.sections && edge.sections[0];
  if (!section) return [];
  return [section.startPoint, ...(section.bendPoints || []), section.endPoint];
}

/**
 * Lay the graph out in ELK's web worker, so a large run never freezes the page. Resolves with
 * {width, height, nodes: {id: {x, y}} (centres), edges: [[{x, y}, …], …] in run order, elapsedMs}.
 */
export function layoutInWorker(run) {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const worker = new Worker(LAYOUT_WORKER);
    const fail = (message) => {
      worker.terminate();
      reject(new Error(message));
    };
    worker.onerror = (event) => fail(event.message || 'The layout worker failed.');
    worker.onmessage = (event) => {
      const { id, data, error } = event.data;
      if (error) {
        fail(error.message || String(error));
        return;
      }
      if (id !== 2) return; // 1 is the registration of the algorithm
      worker.terminate();
      const nodes = {};
      for (const child of data.children) nodes[child.id] = { x: child.x + child.width / 2, y: child.y + child.height / 2 };
      resolve({
        width: data.width,
        height: data.height,
        nodes,
        edges: data.edges.map(edgePoints),
        elapsedMs: performance.now() - started,
      });
    };
    worker.postMessage({ id: 1, cmd: 'register', algorithms: ['layered'] });
    worker.postMessage({
      id: 2,
      cmd: 'layout',
      graph: {
        id: 'run',
        children: run.nodes.map((node) => ({ id: node.id, width: NODE_WIDTH, height: NODE_HEIGHT })),
        edges: run.edges.map((edge, index) => ({ id: `e${index}`, sources: [edge.from], targets: [edge.to] })),
      },
      layoutOptions: run.nodes.length > LARGE_GRAPH_NODES ? { ...LAYOUT_OPTIONS, ...LARGE_GRAPH_OPTIONS } : LAYOUT_OPTIONS,
      options: {},
    });
  });
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
      'aria-describedby': hasMenu ? NODE_HELP_ID : NODE_HELP_READ_ONLY_ID,
    });
    if (hasMenu) group.setAttribute('aria-haspopup', 'menu');
    group.append(
      element('rect', { class: 'node-box', width: NODE_WIDTH, height: NODE_HEIGHT, rx: 6 }),
      element('text', { class: 'node-icon', x: 10, y: 20, 'aria-hidden': 'true' }, KIND_ICONS[node.kind] || '•'),
      element('text', { class: 'node-kind', x: 26, y: 20 }, node.kind),
      element('text', { class: 'node-status-icon', x: NODE_WIDTH - 10, y: 20, 'text-anchor': 'end', 'aria-hidden': 'true' }, STATUS_ICONS[node.status] || ''),
      element('text', { class: 'node-status', x: NODE_WIDTH - 24, y: 20, 'text-anchor': 'end' }, node.status),
      // The whole label, clipped to the box: the name is the whole label, not a cut one.
      element('text', { class: 'node-label', x: 10, y: 41, 'clip-path': `url(#${LABEL_CLIP_ID})` }, nodeLabel(node)),
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
