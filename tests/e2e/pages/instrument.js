// Init script (page.addInitScript) that watches what the page's scripts do,
// without changing the outcome of any call: storage writes, cookie writes,
// timers (attributed to the SDK by the call stack, which passes through
// /npm/dist/), event listeners, and dynamic code evaluation.
(() => {
  const fromSdk = () => /\/npm\/dist\/|wasm:\/\//.test(new Error().stack || '');
  const w = (window.__watch = {
    setItem: [], // { key, sdk }
    removeItem: [],
    cookieWrites: 0,
    timers: new Map(), // id -> { delay, sdk }
    sdkTimeoutsCreated: 0,
    sdkTimeoutsCleared: 0,
    sdkTimeoutsFired: 0,
    listeners: [], // { type, sdk }
    evals: 0, // by the SDK (Playwright's own evaluate uses eval, so attribute by stack)
    liveSdkTimers() {
      let n = 0;
      for (const t of this.timers.values()) if (t.sdk) n++;
      return n;
    },
  });

  const setItem = Storage.prototype.setItem;
  Storage.prototype.setItem = function (key, value) {
    w.setItem.push({ key: String(key), sdk: fromSdk() });
    return setItem.call(this, key, value);
  };
  const removeItem = Storage.prototype.removeItem;
  Storage.prototype.removeItem = function (key) {
    w.removeItem.push({ key: String(key), sdk: fromSdk() });
    return removeItem.call(this, key);
  };

  const cookie = Object.getOwnPropertyDescriptor(Document.prototype, 'cookie');
  Object.defineProperty(Document.prototype, 'cookie', {
    configurable: true,
    enumerable: cookie.enumerable,
    get() {
      return cookie.get.call(this);
    },
    set(v) {
      w.cookieWrites++;
      cookie.set.call(this, v);
    },
  });

  const setTimeout_ = window.setTimeout;
  const clearTimeout_ = window.clearTimeout;
  window.setTimeout = function (handler, delay, ...args) {
    const sdk = fromSdk();
    let id;
    const run = typeof handler === 'function'
      ? function () {
          w.timers.delete(id);
          if (sdk) w.sdkTimeoutsFired++;
          return handler.apply(this, arguments);
        }
      : handler;
    id = setTimeout_.call(window, run, delay, ...args);
    w.timers.set(id, { delay, sdk });
    if (sdk) w.sdkTimeoutsCreated++;
    return id;
  };
  window.clearTimeout = function (id) {
    const t = w.timers.get(id);
    if (t) {
      w.timers.delete(id);
      if (t.sdk) w.sdkTimeoutsCleared++;
    }
    return clearTimeout_.call(window, id);
  };

  const addEventListener_ = EventTarget.prototype.addEventListener;
  EventTarget.prototype.addEventListener = function (type, ...rest) {
    w.listeners.push({ type: String(type), sdk: fromSdk() });
    return addEventListener_.call(this, type, ...rest);
  };

  const eval_ = window.eval;
  window.eval = function (code) {
    if (fromSdk()) w.evals++;
    return eval_(code);
  };
  const Function_ = window.Function;
  window.Function = new Proxy(Function_, {
    apply(target, self, args) {
      if (fromSdk()) w.evals++;
      return Reflect.apply(target, self, args);
    },
    construct(target, args, newTarget) {
      if (fromSdk()) w.evals++;
      return Reflect.construct(target, args, newTarget === window.Function ? target : newTarget);
    },
  });
})();
