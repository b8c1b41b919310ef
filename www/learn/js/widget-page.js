// `widget.html?name=infonce&temperature=0.2`: one widget alone, for an <iframe> in another site.
import { WIDGETS, mount } from './widgets.js';

const query = new URLSearchParams(location.search);
const name = query.get('name') ?? '';
const params = Object.fromEntries([...query].filter(([key]) => key !== 'name'));
const root = document.getElementById('widget');
const spec = WIDGETS[name];
document.title = spec ? `${spec.title} — jem` : 'jem widget';
document.getElementById('title').textContent = spec ? spec.title : 'jem widget';
const link = document.getElementById('section');
if (spec) link.href = spec.section;
else link.hidden = true;
mount(root, name, params).then(
  () => (document.body.dataset.ready = 'true'),
  () => (document.body.dataset.ready = 'error'),
);
