/**
 * Bridge from a Google Tag Manager `dataLayer` to Threadline events.
 *
 * Marketing teams already describe their events to GTM (`dataLayer.push({
 * event: 'add_to_cart', ecommerce: {...} })`, or gtag's `gtag('event',
 * 'purchase', {...})`); the bridge turns the configured names into `track`
 * calls so nobody has to tag the site twice. The page's dataLayer must keep
 * working whatever happens here: the original `push` always runs first and
 * its return value is what the page gets; our part never throws.
 */
import type { Properties } from './index.js';

export interface DataLayerOptions {
  /** The global array's name. Default `dataLayer`. */
  name?: string;
  /**
   * Which `event` names become Threadline events: a map from the dataLayer
   * name to the Threadline name (`{ add_to_cart: 'Product Added' }`), or a
   * list of names kept as they are. Other events are ignored.
   */
  events: Record<string, string> | string[];
  /**
   * Where the event's properties come from: the key of a pushed object whose
   * value is used (e.g. `'ecommerce'`), or a function of the pushed item (of
   * gtag's parameters for `gtag('event', name, params)`). Default: the pushed
   * object without `event` and GTM's own `gtm.*` keys. For gtag's pushes a
   * key does not apply: the parameters are the properties.
   */
  properties?: string | ((item: Record<string, unknown>) => Properties | undefined);
}

type Track = (name: string, properties: Properties | undefined) => void;
type Warn = (message: string, error?: unknown) => void;

const WRAPPED = '__threadlineBridge';

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** gtag() pushes its `arguments` object: `['event', name, params]`. */
function isArguments(v: unknown): v is IArguments {
  return Object.prototype.toString.call(v) === '[object Arguments]';
}

/**
 * Validates `options`; returns the function mapping one pushed item to a
 * Threadline event (or `undefined` to ignore it).
 */
export function dataLayerMapper(
  options: DataLayerOptions,
): (item: unknown) => { name: string; properties: Properties | undefined } | undefined {
  if (!isObject(options)) throw new TypeError('threadline: dataLayer must be an object ({ events, ... })');
  const names = new Map<string, string>();
  const events = options.events;
  if (Array.isArray(events)) {
    for (const e of events) if (typeof e === 'string') names.set(e, e);
  } else if (isObject(events)) {
    for (const [from, to] of Object.entries(events)) if (typeof to === 'string') names.set(from, to);
  } else {
    throw new TypeError('threadline: dataLayer.events must be an object or an array of event names');
  }
  const pick = options.properties;
  if (pick !== undefined && typeof pick !== 'string' && typeof pick !== 'function') {
    throw new TypeError('threadline: dataLayer.properties must be a key or a function');
  }
  return (item) => {
    let event: unknown;
    let source: Record<string, unknown>;
    if (isArguments(item)) {
      if (item[0] !== 'event') return undefined;
      event = item[1];
      source = isObject(item[2]) ? item[2] : {};
    } else if (isObject(item)) {
      event = item.event;
      source = item;
    } else {
      return undefined;
    }
    const name = typeof event === 'string' ? names.get(event) : undefined;
    if (name === undefined) return undefined;
    let props: unknown;
    if (typeof pick === 'function') {
      props = pick(source);
    } else if (typeof pick === 'string' && !isArguments(item)) {
      props = source[pick];
    } else {
      const copy: Properties = {};
      for (const [k, v] of Object.entries(source)) {
        if (k !== 'event' && !k.startsWith('gtm.')) copy[k] = v;
      }
      props = copy;
    }
    return { name, properties: isObject(props) ? (props as Properties) : undefined };
  };
}

/**
 * Hooks the dataLayer named in `options` (creating the array if the page has
 * none yet, as GTM does): the items already in it are replayed now, later
 * pushes as they come. Returns the function that unhooks it.
 */
export function bridgeDataLayer(win: Window, options: DataLayerOptions, track: Track, warn: Warn): () => void {
  const map = dataLayerMapper(options);
  const name = options.name ?? 'dataLayer';
  if (typeof name !== 'string' || name === '') throw new TypeError('threadline: dataLayer.name must be a string');
  const w = win as unknown as Record<string, unknown>;
  const layer = (w[name] = w[name] ?? []);
  if (!Array.isArray(layer)) {
    warn(`window.${name} is not an array; the dataLayer bridge is off`);
    return () => {};
  }
  const handle = (item: unknown): void => {
    try {
      const e = map(item);
      if (e) track(e.name, e.properties);
    } catch (err) {
      warn('a dataLayer item could not be turned into an event', err);
    }
  };
  const arr = layer as unknown[] & { [WRAPPED]?: boolean };
  if (arr[WRAPPED]) {
    warn(`window.${name} is already bridged`);
    return () => {};
  }
  for (const item of arr.slice()) handle(item);
  const original = arr.push;
  const wrapped = function (this: unknown, ...items: unknown[]): unknown {
    // The page's (or GTM's) push first, and its result is what the caller gets.
    const result = original.apply(this, items);
    for (const item of items) handle(item);
    return result;
  };
  try {
    Object.defineProperty(arr, WRAPPED, { value: true, configurable: true });
    arr.push = wrapped as typeof arr.push;
  } catch (err) {
    warn(`window.${name}.push cannot be wrapped; the dataLayer bridge is off`, err);
  }
  return () => {
    try {
      // Only if nobody (GTM) wrapped it since: then our wrapper stays, inert.
      if (arr.push === wrapped) arr.push = original;
      delete arr[WRAPPED];
    } catch {
      // leave it: the wrapper still runs the original push
    }
  };
}
