// Registers the stores and components, then starts Alpine (the CSP build: no eval; the
// templates only name properties, getters and methods defined in these files).

import Alpine from '../vendor/alpinejs-csp.esm.js';
import focus from '../vendor/alpinejs-focus.esm.js';
import actionDrawer from './components/actionDrawer.js';
import actionsTable from './components/actionsTable.js';
import confirmTypedDialog from './components/confirmTypedDialog.js';
import kpiStrip from './components/kpiStrip.js';
import loginForm from './components/loginForm.js';
import membersTable from './components/membersTable.js';
import nodeActionMenu from './components/nodeActionMenu.js';
import nodeDetails from './components/nodeDetails.js';
import policyForm from './components/policyForm.js';
import proposeDialog from './components/proposeDialog.js';
import runActions from './components/runActions.js';
import runGraph from './components/runGraph.js';
import runHead from './components/runHead.js';
import runsTable from './components/runsTable.js';
import sessionBar from './components/sessionBar.js';
import statusTabs from './components/statusTabs.js';
import transitionDialog from './components/transitionDialog.js';
import webhooksPanel from './components/webhooksPanel.js';
import { liveStore } from './stores/live.js';
import { membersStore } from './stores/members.js';
import { noticesStore } from './stores/notices.js';
import { policyStore } from './stores/policy.js';
import { queueStore } from './stores/queue.js';
import { runsStore } from './stores/runs.js';
import { sessionStore } from './stores/session.js';
import { summaryStore } from './stores/summary.js';
import { CLOCK_TICK_MS } from './stores/ui.js';
import { uiStore } from './stores/ui.js';
import { webhooksStore } from './stores/webhooks.js';

Alpine.plugin(focus);

Alpine.store('notices', noticesStore());
Alpine.store('ui', uiStore());
Alpine.store('summary', summaryStore());
Alpine.store('queue', queueStore());
Alpine.store('live', liveStore());
Alpine.store('session', sessionStore());
Alpine.store('members', membersStore());
Alpine.store('policy', policyStore());
Alpine.store('runs', runsStore());
Alpine.store('webhooks', webhooksStore());

Alpine.data('sessionBar', sessionBar);
Alpine.data('kpiStrip', kpiStrip);
Alpine.data('statusTabs', statusTabs);
Alpine.data('actionsTable', actionsTable);
Alpine.data('actionDrawer', actionDrawer);
Alpine.data('transitionDialog', transitionDialog);
Alpine.data('confirmTypedDialog', confirmTypedDialog);
Alpine.data('loginForm', loginForm);
Alpine.data('membersTable', membersTable);
Alpine.data('policyForm', policyForm);
Alpine.data('runsTable', runsTable);
Alpine.data('runHead', runHead);
Alpine.data('runGraph', runGraph);
Alpine.data('nodeDetails', nodeDetails);
Alpine.data('runActions', runActions);
Alpine.data('nodeActionMenu', nodeActionMenu);
Alpine.data('proposeDialog', proposeDialog);
Alpine.data('webhooksPanel', webhooksPanel);

Alpine.start();

window.setInterval(() => Alpine.store('ui').tick(), CLOCK_TICK_MS);
