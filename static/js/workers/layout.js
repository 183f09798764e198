// The run graph's layout, off the page's thread: dagre (@dagrejs/dagre, served from
// node_modules by the app) ranks the DAG top to bottom. Message in: {nodes: [{id, width,
// height}], edges: [{from, to}]}. Message out: {ok, width, height, nodes: {id: {x, y}},
// edges: [[{x, y}, …], …] in the order given, elapsedMs} or {ok: false, message}.

import dagre from '../../vendor/dagre.esm.js';

const SPACING = { rankdir: 'TB', nodesep: 28, ranksep: 48, marginx: 24, marginy: 24 };

self.onmessage = (event) => {
  const started = performance.now();
  try {
    const graph = new dagre.graphlib.Graph({ multigraph: false });
    graph.setGraph({ ...SPACING });
    graph.setDefaultEdgeLabel(() => ({}));
    for (const node of event.data.nodes) {
      graph.setNode(node.id, { width: node.width, height: node.height });
    }
    for (const edge of event.data.edges) graph.setEdge(edge.from, edge.to);
    dagre.layout(graph);
    const nodes = {};
    for (const id of graph.nodes()) {
      const placed = graph.node(id);
      nodes[id] = { x: placed.x, y: placed.y };
    }
    const edges = event.data.edges.map((edge) => graph.edge(edge.from, edge.to).points);
    const size = graph.graph();
    self.postMessage({
      ok: true,
      width: size.width,
      height: size.height,
      nodes,
      edges,
      elapsedMs: performance.now() - started,
    });
  } catch (error) {
    self.postMessage({ ok: false, message: String(error && error.message ? error.message : error) });
  }
};
