// Types of widgets.js: the tutorial's widgets, to mount in any page.

export interface WidgetSpec {
  /** The tutorial page that explains it. */
  section: string;
  title: string;
  params: Record<string, { default: number | string; doc: string }>;
}

/** Every widget by name. */
export const WIDGETS: Record<string, WidgetSpec>;

/** The widget's parameters: defaults overridden by `given` (strings become numbers where the default is one). */
export function resolveParams(name: string, given?: Record<string, string | number>): Record<string, number | string>;

/** Mounts widget `name` into `element`; resolves once it is interactive, rejects (and shows why) on error. */
export function mount(element: HTMLElement, name: string, params?: Record<string, string | number>): Promise<void>;
