// A tutorial page: mounts every element with a `data-widget` attribute (its other data-
// attributes are the widget's parameters) and marks the page ready once all are interactive.
import { mount } from './widgets.js';

const started = performance.now();
const elements = [...document.querySelectorAll('[data-widget]')];
const mounted = elements.map((element) => {
  const { widget, ...params } = element.dataset;
  return mount(element, widget, params);
});
Promise.allSettled(mounted).then((results) => {
  document.body.dataset.interactiveMs = String(Math.round(performance.now() - started));
  document.body.dataset.ready = results.every((r) => r.status === 'fulfilled') ? 'true' : 'error';
});
