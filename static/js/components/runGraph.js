// The run's graph (/runs/{id}): loads the run, lays it out in a worker, draws it in SVG, and
// handles pan (drag), zoom (wheel, buttons, keys + and -), selection (click, Enter) and the
// NodeActionMenu's openers (right-click, the context-menu key, Shift+F10). Layout and drawing
// times go on the <svg> as data attributes, for the README's measurement.

import { drawGraph } from '../lib/graph.js';
import { layoutInWorker } from '../lib/graph.js';
import { nodeElement } from '../lib/graph.js';
import { startLayoutWorker } from '../lib/graph.js';

const MIN_SCALE = 0.05;
const MAX_SCALE = 2.5;
const ZOOM_STEP = 1.25;
const READABLE_SCALE = 0.8;

function nodeIdOf(target) {
  const group = target && target.closest ? target.closest('.graph-node') : null;
  return group ? group.getAttribute('data-node-id') : null;
}

export default function runGraph() {
  return {
    state: 'loading', // loading | laying-out | drawn | failed
    problem: '',
    scale: 1,
    x: 0,
    y: 0,
    width: 0,
    height: 0,
    drag: null,

    async init() {
      const started = performance.now();
      startLayoutWorker();
      const run = await this.$store.runs.loadRun(this.$el.dataset.runId);
      if (!run) {
        this.state = 'failed';
        this.problem = this.$store.runs.runState === 'missing' ? 'No run with this id in your workspace.' : 'The run could not be loaded.';
        return;
      }
      this.state = 'laying-out';
      const fetched = performance.now();
      let layout;
      try {
        layout = await layoutInWorker(run);
      } catch (error) {
        this.state = 'failed';
        this.problem = `The graph could not be laid out: ${error.message}`;
        return;
      }
      this.width = layout.width;
      this.height = layout.height;
      const drawing = performance.now();
      drawGraph(this.$refs.viewport, run, layout, this.$store.runs.hasMenu);
      this.fitReadable();
      const drawMs = performance.now() - drawing;
      this.state = 'drawn';
      // The figure is taken once the browser has painted the drawn graph: the frame after the
      // one that drew it.
      window.requestAnimationFrame(() => {
        window.requestAnimationFrame(() => {
          const svg = this.$refs.svg;
          svg.dataset.layoutMs = layout.elapsedMs.toFixed(0);
          svg.dataset.drawMs = drawMs.toFixed(0);
          svg.dataset.renderMs = (performance.now() - fetched).toFixed(0);
          svg.dataset.totalMs = (performance.now() - started).toFixed(0);
        });
      });
    },

    get isLoading() {
      return this.state === 'loading' || this.state === 'laying-out';
    },

    get loadingLabel() {
      if (this.state === 'laying-out') return `Laying out ${this.$store.runs.run.nodes.length} nodes…`;
      return 'Loading the run…';
    },

    get hasFailed() {
      return this.state === 'failed';
    },

    get zoomLabel() {
      return `${Math.round(this.scale * 100)} %`;
    },

    get graphLabel() {
      const run = this.$store.runs.run;
      return run ? `Graph of run ${run.id}: ${run.nodes.length} nodes, ${run.edges.length} edges` : 'Graph of the run';
    },

    // ---- pan and zoom

    apply() {
      this.$refs.viewport.setAttribute('transform', `translate(${this.x.toFixed(1)},${this.y.toFixed(1)}) scale(${this.scale.toFixed(4)})`);
    },

    fit() {
      const box = this.$refs.svg.getBoundingClientRect();
      if (!this.width || !box.width) return;
      this.scale = Math.max(MIN_SCALE, Math.min(1, box.width / this.width, box.height / this.height));
      this.x = (box.width - this.width * this.scale) / 2;
      this.y = Math.max(0, (box.height - this.height * this.scale) / 2);
      this.apply();
    },

    /** First view: the whole graph if it is readable so, else its top at a readable size. */
    fitReadable() {
      const box = this.$refs.svg.getBoundingClientRect();
      if (!this.width || !box.width) return;
      const whole = Math.min(1, box.width / this.width, box.height / this.height);
      this.scale = Math.max(whole, Math.min(READABLE_SCALE, box.width / this.width));
      this.x = (box.width - this.width * this.scale) / 2;
      this.y = this.scale === whole ? Math.max(0, (box.height - this.height * this.scale) / 2) : 0;
      this.apply();
    },

    zoomBy(factor, centreX, centreY) {
      const box = this.$refs.svg.getBoundingClientRect();
      const cx = centreX === undefined ? box.width / 2 : centreX;
      const cy = centreY === undefined ? box.height / 2 : centreY;
      const next = Math.max(MIN_SCALE, Math.min(MAX_SCALE, this.scale * factor));
      this.x = cx - ((cx - this.x) * next) / this.scale;
      this.y = cy - ((cy - this.y) * next) / this.scale;
      this.scale = next;
      this.apply();
    },

    zoomIn() {
      this.zoomBy(ZOOM_STEP);
    },

    zoomOut() {
      this.zoomBy(1 / ZOOM_STEP);
    },

    onWheel(event) {
      event.preventDefault();
      const box = this.$refs.svg.getBoundingClientRect();
      this.zoomBy(event.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP, event.clientX - box.left, event.clientY - box.top);
    },

    onPointerDown(event) {
      if (event.button !== 0 || nodeIdOf(event.target)) return;
      this.drag = { startX: event.clientX, startY: event.clientY, x: this.x, y: this.y };
      this.$refs.svg.setPointerCapture(event.pointerId);
    },

    onPointerMove(event) {
      if (!this.drag) return;
      this.x = this.drag.x + event.clientX - this.drag.startX;
      this.y = this.drag.y + event.clientY - this.drag.startY;
      this.apply();
    },

    onPointerUp(event) {
      if (!this.drag) return;
      this.drag = null;
      this.$refs.svg.releasePointerCapture(event.pointerId);
    },

    /** A node that takes focus off screen is brought into view. */
    onFocusIn(event) {
      const nodeId = nodeIdOf(event.target);
      if (!nodeId) return;
      const box = this.$refs.svg.getBoundingClientRect();
      const place = event.target.getBoundingClientRect();
      const inside = place.left >= box.left && place.right <= box.right && place.top >= box.top && place.bottom <= box.bottom;
      if (inside) return;
      this.x += box.left + box.width / 2 - (place.left + place.width / 2);
      this.y += box.top + box.height / 2 - (place.top + place.height / 2);
      this.apply();
    },

    // ---- selection and the menu

    select(nodeId) {
      this.$store.runs.selectedNodeId = nodeId;
      for (const selected of this.$refs.viewport.querySelectorAll('.graph-node.is-selected')) {
        selected.classList.remove('is-selected');
        selected.removeAttribute('aria-pressed');
      }
      const chosen = nodeElement(nodeId);
      if (chosen) {
        chosen.classList.add('is-selected');
        chosen.setAttribute('aria-pressed', 'true');
      }
    },

    onClick(event) {
      const nodeId = nodeIdOf(event.target);
      if (nodeId) this.select(nodeId);
    },

    openMenu(nodeId, x, y) {
      if (!this.$store.runs.hasMenu) return false;
      this.select(nodeId);
      this.$dispatch('node-menu-open', { nodeId, x, y });
      return true;
    },

    openMenuAtNode(nodeId) {
      const place = nodeElement(nodeId).getBoundingClientRect();
      return this.openMenu(nodeId, place.left + 12, place.bottom + 4);
    },

    onContextMenu(event) {
      const nodeId = nodeIdOf(event.target);
      if (!nodeId) return;
      // Without a menu (a viewer) the browser's own context menu stays.
      if (this.openMenu(nodeId, event.clientX, event.clientY)) event.preventDefault();
    },

    onKeydown(event) {
      const nodeId = nodeIdOf(event.target);
      if (event.key === '+' || event.key === '=') {
        this.zoomIn();
        return;
      }
      if (event.key === '-') {
        this.zoomOut();
        return;
      }
      if (!nodeId) return;
      const wantsMenu = event.key === 'ContextMenu' || (event.key === 'F10' && event.shiftKey);
      if (wantsMenu) {
        if (this.openMenuAtNode(nodeId)) event.preventDefault();
      } else if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        this.select(nodeId);
      }
    },
  };
}
