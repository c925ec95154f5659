// spawnlab's loader, inlined into every page by app/src/lib.rs (`Bundle`):
// fetch the bundle by its versioned URLs, then hand each island on the page
// (a <leptos-island> the server rendered) to its entry point, one after
// another in document order, so the last island (`Live`) runs last.
((js, wasm) => {
  const start = async () => {
    const bundle = await import(js);
    await bundle.default({ module_or_path: wasm });
    bundle.hydrate();
    for (const island of document.querySelectorAll("leptos-island")) {
      const entry = bundle[island.dataset.component];
      if (entry) {
        await entry(island);
      } else {
        console.warn(`spawnlab: the bundle has no island ${island.dataset.component}`);
      }
    }
  };
  // After the page's first paint; the timeout keeps a busy page from
  // waiting forever.
  if ("requestIdleCallback" in window) {
    window.requestIdleCallback(start, { timeout: 2000 });
  } else {
    start();
  }
})
