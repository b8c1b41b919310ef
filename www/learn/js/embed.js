// embed.html: every widget's name, parameters and the snippets that embed it, from the same
// table the widgets are mounted from (so the list cannot drift from the code).
import { WIDGETS } from './widgets.js';
import { el } from './ui.js';

const base = new URL('.', location.href).href;
const list = document.getElementById('widgets');
for (const [name, spec] of Object.entries(WIDGETS)) {
  const params = Object.entries(spec.params);
  const example = params.length ? `&${params[0][0]}=${params[0][1].default}` : '';
  const iframe = `<iframe src="${base}widget.html?name=${name}${example}" width="100%" height="720" style="border:0" title="${spec.title}"></iframe>`;
  const module = `<div id="${name}-here"></div>\n<script type="module">\n  import { mount } from '${base}js/widgets.js';\n  mount(document.getElementById('${name}-here'), '${name}', {${params.length ? ` ${params[0][0]}: ${JSON.stringify(params[0][1].default)} ` : ''}});\n</script>`;
  list.append(
    el(
      'section',
      { class: 'embed-entry', id: name },
      el('h2', {}, el('code', {}, name), ' — ', spec.title),
      el('p', {}, 'Explained in ', el('a', { href: spec.section }, spec.section.replace('.html', '')), '. ', el('a', { href: `widget.html?name=${name}` }, 'Open it alone'), '.'),
      el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'parameter'), el('th', {}, 'default'), el('th', {}, 'meaning'))), el('tbody', {}, ...params.map(([key, p]) => el('tr', {}, el('td', {}, el('code', {}, key)), el('td', {}, el('code', {}, String(p.default))), el('td', {}, p.doc))))),
      el('p', {}, 'As an iframe:'),
      el('pre', {}, iframe),
      el('p', {}, 'As an ES module (the host must allow CORS; training still runs in a Web Worker):'),
      el('pre', {}, module),
    ),
  );
}
document.body.dataset.ready = 'true';
